"""Rollback actions: an HTTP request or a command, each with a timeout; never raises."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

    from mlchaos.spec import RollbackAction

__all__ = ["run_action"]


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
