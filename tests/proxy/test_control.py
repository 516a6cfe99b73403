"""The control API and its client: token auth, leases over HTTP, clear errors."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import aiohttp
import pytest
from pydantic import TypeAdapter

from mlchaos.errors import ControlAPIError
from mlchaos.proxy import ControlClient, ProxyServer, Rule
from mlchaos.units import Duration
from tests.conftest import free_port
from tests.proxy.conftest import MakeProxy, Upstream

RULE = TypeAdapter[Rule](Rule)


async def call(
    proxy: ProxyServer, method: str, path: str, *, token: str | None = "", json: object = None
) -> tuple[int, dict[str, object]]:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token or proxy.token}"
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, proxy.control_url + path, headers=headers, json=json) as r,
    ):
        return r.status, await r.json()


@pytest.mark.asyncio
async def test_every_endpoint_refuses_a_missing_or_wrong_token(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    endpoints = [
        ("GET", "/health"),
        ("GET", "/faults"),
        ("POST", "/faults"),
        ("DELETE", "/faults"),
        ("POST", "/faults/x/renew"),
        ("DELETE", "/faults/x"),
        ("GET", "/stats"),
        ("GET", "/no-such-endpoint"),
    ]
    for method, path in endpoints:
        for token in (None, "wrong", proxy.token + "x"):
            status, body = await call(proxy, method, path, token=token)
            assert status == 401, (method, path, token)
            assert "bearer token" in str(body["error"])
    status, body = await call(proxy, "GET", "/health")
    assert status == 200
    assert body["status"] == "ok"
    assert body["upstream"] == http_upstream.address


@pytest.mark.asyncio
async def test_generated_token_is_written_to_a_0600_file(
    http_upstream: Upstream, make_proxy: MakeProxy, tmp_path: Path
) -> None:
    proxy = await make_proxy(http_upstream.address)
    assert proxy.token_file is not None
    assert proxy.token_file.parent == tmp_path
    assert proxy.token_file.read_text().strip() == proxy.token
    assert stat.S_IMODE(proxy.token_file.stat().st_mode) == 0o600
    assert len(proxy.token) >= 32


@pytest.mark.asyncio
async def test_existing_token_file_is_used_and_a_given_token_wins(
    http_upstream: Upstream, make_proxy: MakeProxy, tmp_path: Path
) -> None:
    token_file = tmp_path / "mine.token"
    token_file.write_text("s3cret-token\n")
    from_file = await make_proxy(http_upstream.address, control={"token_file": str(token_file)})
    assert from_file.token == "s3cret-token"
    given = await make_proxy(http_upstream.address, token="given-token")
    assert given.token == "given-token"
    assert given.token_file is None
    assert (await call(given, "GET", "/health", token="given-token"))[0] == 200


@pytest.mark.asyncio
async def test_default_token_file_is_private_and_removed_on_stop(
    http_upstream: Upstream, make_proxy: MakeProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    proxy = await make_proxy(http_upstream.address, control={})
    path = proxy.token_file
    assert path is not None
    assert path.parent == tmp_path / "mlchaos"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    await proxy.stop()
    assert not path.exists()


@pytest.mark.asyncio
async def test_faults_round_trip_through_the_api(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    rule = {"type": "latency", "delay": "250ms", "arm": "control", "probability": "50%"}
    status, body = await call(proxy, "POST", "/faults", json={"rule": rule, "lease": "2s"})
    assert status == 201
    assert body["lease"] == "2s"
    assert 1.9 <= float(str(body["expires_in"])) <= 2.0
    fault_id = body["id"]
    status, body = await call(proxy, "GET", "/faults")
    [listed] = body["faults"]  # type: ignore[misc]
    assert listed["id"] == fault_id
    assert listed["rule"] == {
        "type": "latency",
        "delay": "250ms",
        "jitter": "0s",
        "arm": "control",
        "probability": "50%",
        "stream": "both",
    }
    status, body = await call(proxy, "POST", f"/faults/{fault_id}/renew", json={"lease": "10s"})
    assert status == 200
    assert body["lease"] == "10s"
    status, body = await call(proxy, "POST", f"/faults/{fault_id}/renew")
    assert body["lease"] == "5s", "an empty renewal uses the default lease"
    zero = {"none": 0, "experiment": 0, "control": 0}
    removed = {"removed": fault_id, "applied": 0, "hits": zero}
    assert (await call(proxy, "DELETE", f"/faults/{fault_id}")) == (200, removed)
    assert (await call(proxy, "DELETE", f"/faults/{fault_id}"))[0] == 404
    assert (await call(proxy, "POST", f"/faults/{fault_id}/renew"))[0] == 404
    await call(proxy, "POST", "/faults", json={"rule": {"type": "abort"}})
    await call(proxy, "POST", "/faults", json={"rule": {"type": "hang"}})
    assert await call(proxy, "DELETE", "/faults") == (200, {"removed": 2})


@pytest.mark.asyncio
async def test_bad_requests_get_400_naming_every_problem(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            proxy.control_url + "/faults",
            data=b"{not json",
            headers={"Authorization": f"Bearer {proxy.token}"},
        ) as r,
    ):
        assert r.status == 400
        assert "not valid JSON" in (await r.json())["error"]
    bad = {"rule": {"type": "latency", "delay": "soon", "probability": "150%"}, "lease": "5"}
    status, body = await call(proxy, "POST", "/faults", json=bad)
    assert status == 400
    error = str(body["error"])
    assert "rule.latency.delay" in error
    assert "rule.latency.probability" in error
    assert "lease" in error
    status, body = await call(
        proxy, "POST", "/faults", json={"rule": {"type": "bandwidth", "bytes_per_second": 5}}
    )
    assert status == 400
    assert "does not apply in http mode" in str(body["error"])
    status, body = await call(proxy, "POST", "/faults", json={"rule": {"type": "teleport"}})
    assert status == 400
    assert len(proxy.faults) == 0


@pytest.mark.asyncio
async def test_stats_count_requests_errors_and_faults_per_arm(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    proxy.faults.add(RULE.validate_python({"type": "abort", "status": 503}))
    async with aiohttp.ClientSession() as s:
        for arm in ("experiment", "experiment", "control"):
            async with s.get(
                f"http://{proxy.listen_address}/", headers={"x-mlchaos-arm": arm}
            ) as r:
                await r.read()
    status, body = await call(proxy, "GET", "/stats")
    assert status == 200
    assert body["arms"] == {
        "none": {"requests": 0, "errors": 0, "faults": 0},
        "experiment": {"requests": 2, "errors": 2, "faults": 2},
        "control": {"requests": 1, "errors": 0, "faults": 0},
    }
    assert body["active_faults"] == 1
    assert body["observations"] == 3


@pytest.mark.asyncio
async def test_client_drives_the_whole_api(http_upstream: Upstream, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(http_upstream.address)
    async with ControlClient(proxy.control_url, proxy.token) as client:
        assert (await client.health())["status"] == "ok"
        rule = RULE.validate_python({"type": "abort", "status": 502})
        fault_id = await client.add_fault(rule, Duration(3.0), fault_id="run-1-0")
        assert fault_id == "run-1-0"
        [active] = await client.list_faults()
        assert active.rule == rule
        assert 2.0 < await client.renew(fault_id, Duration(4.0)) <= 4.0
        assert (await client.stats()).active_faults == 1
        assert await client.remove(fault_id) is True
        assert await client.remove(fault_id, missing_ok=True) is False
        with pytest.raises(ControlAPIError, match=r"404.*no active fault"):
            await client.remove(fault_id)
        await client.add_fault(rule)
        assert await client.clear() == 1


@pytest.mark.asyncio
async def test_lease_set_through_the_client_expires_on_the_proxy(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    async with ControlClient(proxy.control_url, proxy.token) as client:
        await client.add_fault(RULE.validate_python({"type": "abort"}), Duration(0.2))
        assert len(await client.list_faults()) == 1
        await asyncio.sleep(0.3)
        assert await client.list_faults() == []


@pytest.mark.asyncio
async def test_client_errors_say_what_to_fix(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    async with ControlClient(proxy.control_url, "wrong") as client:
        with pytest.raises(ControlAPIError, match=r"wrong token.*check the token file"):
            await client.health()
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with ControlClient(nowhere, "t", timeout=2.0) as client:
        with pytest.raises(ControlAPIError, match=rf"{nowhere}/faults.*is it running"):
            await client.list_faults()
    async with ControlClient(proxy.control_url, proxy.token) as client:
        with pytest.raises(ControlAPIError, match=r"400.*does not apply in http mode"):
            await client.add_fault(RULE.validate_python({"type": "refuse"}))


@pytest.mark.asyncio
async def test_a_fault_listed_in_a_shape_this_client_cannot_read_is_a_clear_error() -> None:
    """A stand-in control API lists a fault of a rule type this mlchaos does not know (as a
    newer proxy would): the typed listing says so as a ControlAPIError, the id listing reads it."""
    from aiohttp import web

    from mlchaos.errors import ControlAPIError
    from mlchaos.proxy import ControlClient

    async def faults(request: web.Request) -> web.Response:
        odd = {"id": "from-a-newer-proxy", "rule": {"type": "gpu_oom"}, "lease": "5s"}
        return web.json_response({"faults": [odd]})

    app = web.Application()
    app.router.add_get("/faults", faults)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with ControlClient(url, "token") as client:
            with pytest.raises(ControlAPIError, match="an active fault this client cannot read"):
                await client.list_faults()
            assert await client.fault_ids() == ["from-a-newer-proxy"]
    finally:
        await runner.cleanup()
