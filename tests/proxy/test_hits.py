"""Every fault accounted for: a proxy counts, per fault and arm, the requests (or connections) a
fault actually changed, and marks the answers it changed so the client at the edge knows."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from pydantic import TypeAdapter

from mlchaos.arms import ARM_HEADER
from mlchaos.proxy import ControlClient, Rule
from mlchaos.spec import FeastMissingFault
from tests.proxy.conftest import Echo, MakeProxy, Upstream, _serve_app

RULE = TypeAdapter[Rule](Rule)
EXP = {ARM_HEADER: "experiment"}
CTL = {ARM_HEADER: "control"}
MARK = "x-mlchaos-fault"


def rule(**data: object) -> Rule:
    return RULE.validate_python(data)


@pytest.mark.asyncio
async def test_hits_are_counted_per_arm_and_faulted_answers_carry_the_mark(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    abort = proxy.faults.add(rule(type="abort", status=503, arm="experiment"))
    slow = proxy.faults.add(rule(type="latency", delay="1ms", arm="control", probability="100%"))
    url = f"http://{proxy.listen_address}/x"
    marks: list[str | None] = []
    async with aiohttp.ClientSession() as s:
        for headers in (EXP, EXP, EXP, CTL, CTL, {}):
            async with s.get(url, headers=headers) as r:
                await r.read()
                marks.append(r.headers.get(MARK))
    assert marks == ["1", "1", "1", "1", "1", None]
    assert proxy.faults.get(abort).hits == {"none": 0, "experiment": 3, "control": 0}
    assert proxy.faults.get(slow).hits == {"none": 0, "experiment": 0, "control": 2}
    assert proxy.faults.get(abort).applied == 3
    assert list(proxy.observations.column("fault")) == [1, 1, 1, 1, 1, 0]  # type: ignore[union-attr]
    async with ControlClient(f"http://{proxy.control_address}", proxy.token) as c:
        assert await c.renew_fault(abort) == {"none": 0, "experiment": 3, "control": 0}
        assert await c.remove_fault(abort) == {"none": 0, "experiment": 3, "control": 0}
        assert await c.remove_fault(abort) is None, "a second removal finds nothing"


FEAST = {
    "metadata": {"feature_names": ["entity_id", "view__f1", "view__f2"]},
    "results": [
        {"values": [7], "statuses": ["PRESENT"], "event_timestamps": ["t0"]},
        {"values": [0.1], "statuses": ["PRESENT"], "event_timestamps": ["t1"]},
        {"values": [1.5], "statuses": ["PRESENT"], "event_timestamps": ["t1"]},
    ],
}


@pytest.mark.asyncio
async def test_a_data_fault_that_changes_nothing_is_not_a_hit(make_proxy: MakeProxy) -> None:
    async def feast(request: web.Request) -> web.Response:
        return web.json_response(FEAST)

    app = web.Application()
    app.router.add_post("/get-online-features", feast)
    runner, port = await _serve_app(app)
    try:
        proxy = await make_proxy(f"127.0.0.1:{port}")

        def missing(feature: str) -> str:
            preset = {"type": "feast_missing", "target": "p", "features": [feature]}
            return proxy.faults.add(FeastMissingFault.model_validate(preset).rule())

        present, absent = missing("f1"), missing("f9")
        url = f"http://{proxy.listen_address}/get-online-features"
        async with aiohttp.ClientSession() as s:
            for _ in range(2):
                async with s.post(url, json={}, headers=EXP) as r:
                    doc = await r.json()
                    assert r.headers.get(MARK) == "1"
    finally:
        await runner.cleanup()
    assert doc["results"][1]["statuses"] == ["NOT_FOUND"]
    assert proxy.faults.get(present).hits["experiment"] == 2
    assert proxy.faults.get(absent).hits["experiment"] == 0, "f9 is not in the answer"


@pytest.mark.asyncio
async def test_the_mark_travels_back_through_a_proxy_that_faulted_nothing(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    inner = await make_proxy(http_upstream.address)
    outer = await make_proxy(inner.listen_address)
    inner.faults.add(rule(type="latency", delay="1ms", arm="experiment"))
    async with aiohttp.ClientSession() as s:
        for headers in (EXP, CTL):
            async with s.get(f"http://{outer.listen_address}/x", headers=headers) as r:
                await r.read()
                assert r.headers.getall(MARK, []) == (["1"] if headers is EXP else [])
    # The edge logs the request as faulted (on the mark), though no fault of its own fired.
    assert list(outer.observations.column("fault")) == [1, 0]  # type: ignore[union-attr]
    assert len(outer.faults) == 0


@pytest.mark.asyncio
async def test_tcp_faults_count_connections_per_arm(tcp_echo: Echo, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(tcp_echo.address, protocol="tcp")
    fault = proxy.faults.add(rule(type="latency", delay="1ms", arm="all"))
    at = proxy.listen_address
    for _ in range(3):
        reader, writer = await asyncio.open_connection(at.host, at.port)
        writer.write(b"ping\n")
        await writer.drain()
        assert await reader.readline() == b"ping\n"
        writer.close()
        await writer.wait_closed()
    assert proxy.faults.get(fault).hits == {"none": 3, "experiment": 0, "control": 0}
