"""A demo service that is another program: run it as a child, announce it once it answers.

``serve_child`` starts ``argv`` (the child's output goes to stderr), polls ``ready`` until it
says yes, prints the demo's ready line, and then waits for SIGTERM/SIGINT — or for the child to
exit, which is an error — and stops the child (SIGTERM, then SIGKILL after 5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

from mlchaos.demo._serve import ServeError

__all__ = ["serve_child"]


async def serve_child(
    name: str,
    argv: Sequence[str],
    port: int,
    ready: Callable[[], Awaitable[bool]],
    ready_within: float = 15.0,
) -> None:
    """Run ``argv`` until a stop signal; ``ready`` tells when it serves on ``port``."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    child = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=sys.stderr
    )
    try:
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        deadline = time.monotonic() + ready_within
        while not await _answers(ready):
            if child.returncode is not None:
                raise ServeError(f"{argv[0]} exited with status {child.returncode}")
            if time.monotonic() > deadline:
                raise ServeError(f"{argv[0]} did not become ready within {ready_within:g}s")
            await asyncio.sleep(0.05)
        sys.stdout.write(json.dumps({"ready": True, "name": name, "port": port}) + "\n")
        sys.stdout.flush()
        exited = asyncio.create_task(child.wait())
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if exited in done:
            raise ServeError(f"{argv[0]} exited with status {child.returncode}")
        exited.cancel()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        if child.returncode is None:
            child.terminate()
            try:
                async with asyncio.timeout(5):
                    await child.wait()
            except TimeoutError:
                child.kill()
                await child.wait()


async def _answers(ready: Callable[[], Awaitable[bool]]) -> bool:
    with contextlib.suppress(OSError):
        return await ready()
    return False
