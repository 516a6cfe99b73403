"""Rollback actions: an HTTP action can carry a bearer token read from a file."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from mlchaos.proxy import ProxyConfig, ProxyServer
from mlchaos.runner._actions import run_action
from mlchaos.spec import HttpAction
from mlchaos.testing import start_upstream


@pytest.mark.asyncio
async def test_an_http_action_sends_the_token_from_its_file(tmp_path: Path) -> None:
    """The proxy's control API (bearer token) is the real thing an action must authenticate to."""
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    async with await start_upstream() as up:
        config = ProxyConfig.model_validate(
            {"listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{up.port}"}
        )
        async with ProxyServer(config, token="s3cret") as proxy, aiohttp.ClientSession() as s:
            url = f"{proxy.control_url}/faults"
            with_token = HttpAction(name="a", url=url, method="GET", token_file=str(token_file))
            without = HttpAction(name="b", url=url, method="GET")
            missing = HttpAction(
                name="c", url=url, method="GET", token_file=str(tmp_path / "absent")
            )
            assert await run_action(with_token, s) == (True, f"GET {url} → 200")
            assert await run_action(without, s) == (False, f"GET {url} → 401")
            ok, detail = await run_action(missing, s)
            assert not ok
            assert "cannot read token file" in detail
