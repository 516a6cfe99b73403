"""Rollback actions: an HTTP request or a command, each with a timeout; never raises."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

    from mlchaos.spec import RollbackAction

__all__ = ["check_action", "run_action"]


async def run_action(action: RollbackAction, session: aiohttp.ClientSession) -> tuple[bool, str]:
    """Run one rollback action; report (ok, detail) instead of raising."""
    import aiohttp  # noqa: PLC0415

    from mlchaos.spec import CommandAction  # noqa: PLC0415

    limit = action.timeout.seconds
    if isinstance(action, CommandAction):
        try:
            proc = await asyncio.create_subprocess_exec(
                *action.argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
        except OSError as exc:
            return False, f"cannot start {action.argv[0]!r}: {exc.strerror}"
        try:
            async with asyncio.timeout(limit):
                output, _ = await proc.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return False, f"still running after {action.timeout}; killed"
        tail = output.decode(errors="replace").strip()[-200:]
        return proc.returncode == 0, f"exit {proc.returncode}" + (f": {tail}" if tail else "")
    headers = {}
    if action.token_file is not None:
        try:
            text = await asyncio.to_thread(Path(action.token_file).read_text, encoding="utf-8")
        except OSError as exc:
            return False, f"cannot read token file {action.token_file}: {exc.strerror}"
        headers["Authorization"] = f"Bearer {text.strip()}"
    try:
        async with asyncio.timeout(limit):
            async with session.request(
                action.method, action.url, json=action.body, headers=headers
            ) as resp:
                await resp.read()
                ok = resp.status in action.expect_status
                return ok, f"{action.method} {action.url} → {resp.status}"
    except TimeoutError:
        return False, f"{action.method} {action.url}: no answer within {action.timeout}"
    except (aiohttp.ClientError, OSError) as exc:
        return False, f"{action.method} {action.url}: {exc or type(exc).__name__}"


async def check_action(action: RollbackAction) -> tuple[bool, str]:
    """A rollback action in check mode (nothing is changed): a command's program can be
    started; an HTTP action's token file is readable and its host accepts a connection."""
    import shutil  # noqa: PLC0415
    from urllib.parse import urlsplit  # noqa: PLC0415

    from mlchaos.spec import CommandAction  # noqa: PLC0415

    if isinstance(action, CommandAction):
        program = action.argv[0]
        found = shutil.which(program)
        if found is None:
            return False, f"{program!r} is not an executable file or on PATH"
        return True, f"{program!r} found at {found} (not run)"
    if action.token_file is not None:
        try:
            await asyncio.to_thread(Path(action.token_file).read_text, encoding="utf-8")
        except OSError as exc:
            return False, f"cannot read token file {action.token_file}: {exc.strerror}"
    url = urlsplit(action.url)
    port = url.port or (443 if url.scheme == "https" else 80)
    host = url.hostname or ""
    try:
        async with asyncio.timeout(action.timeout.seconds):
            _, writer = await asyncio.open_connection(host, port)
        writer.close()
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        return False, f"{host}:{port} does not accept connections ({reason})"
    return True, f"{host}:{port} accepts connections (request not sent)"
