"""``serve_upstream_forever`` (behind ``mlchaos upstream serve``) runs until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp
import pytest

SERVE = (
    "import asyncio, functools\n"
    "from mlchaos.testing import serve_upstream_forever\n"
    "say = functools.partial(print, flush=True)\n"
    "asyncio.run(serve_upstream_forever('127.0.0.1', 0, print_fn=say))\n"
)


@pytest.mark.asyncio
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_the_upstream_serves_until_a_signal_then_stops_cleanly(sig: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"{match.group()}/v2/health/ready") as resp,
        ):
            assert (resp.status, await resp.json()) == (200, {"ready": True})
        proc.send_signal(sig)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        assert "stopping" in out.decode()
        assert err == b""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
