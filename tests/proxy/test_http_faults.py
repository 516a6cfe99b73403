"""Faults in the HTTP proxy: each hits only its arm, with its probability, and does its thing."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from pydantic import TypeAdapter

from mlchaos.arms import ARM_HEADER
from mlchaos.observations import ErrorKind
from mlchaos.proxy import Rule
from mlchaos.units import Duration
from tests.proxy.conftest import MakeProxy, Upstream, connect, raw_request, read_response

RULE = TypeAdapter[Rule](Rule)
EXP = {ARM_HEADER: "experiment"}
CTL = {ARM_HEADER: "control"}


def rule(**data: object) -> Rule:
    return RULE.validate_python(data)


async def status_of(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> int:
    async with session.get(url, headers=headers) as r:
        await r.read()
        return r.status


@pytest.mark.asyncio
async def test_abort_answers_for_the_experiment_arm_only_without_calling_upstream(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    proxy.faults.add(rule(type="abort", status=418, body="nope", content_type="text/plain"))
    url = f"http://{proxy.listen_address}/echo"
    async with aiohttp.ClientSession() as s:
        async with s.get(url, headers=EXP) as r:
            assert r.status == 418
            assert await r.text() == "nope"
            assert r.headers["content-type"] == "text/plain"
            assert r.headers[ARM_HEADER] == "experiment"
        assert await status_of(s, url, CTL) == 200
        assert await status_of(s, url, {}) == 200
    assert [s.headers.get(ARM_HEADER) for s in http_upstream.seen] == ["control", None]
    store = proxy.observations
    assert store is not None
    assert list(store.column("fault")) == [1, 0, 0]
    assert list(store.column("status")) == [418, 200, 200]
    assert proxy.faults.list()[0].applied == 1


@pytest.mark.asyncio
async def test_control_arm_rule_hits_control_and_all_hits_every_request(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    url = f"http://{proxy.listen_address}/echo"
    async with aiohttp.ClientSession() as s:
        proxy.faults.add(rule(type="abort", arm="control", status=503), fault_id="c")
        got = [await status_of(s, url, h) for h in (EXP, CTL, {})]
        assert got == [200, 503, 200]
        proxy.faults.remove("c")
        proxy.faults.add(rule(type="abort", arm="all", status=500))
        got = [await status_of(s, url, h) for h in (EXP, CTL, {})]
        assert got == [500, 500, 500]


@pytest.mark.asyncio
async def test_probability_is_honoured(http_upstream: Upstream, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(http_upstream.address, seed=3)
    proxy.faults.add(rule(type="abort", probability="25%", status=503))
    url = f"http://{proxy.listen_address}/echo"
    n = 400
    async with aiohttp.ClientSession() as s:
        statuses = [await status_of(s, url, EXP) for _ in range(n)]
    aborted = statuses.count(503)
    # expected 100 of 400 (sd ~8.7); the bounds are about 4.5 sd wide
    assert 60 <= aborted <= 140
    assert statuses.count(200) == n - aborted


@pytest.mark.asyncio
async def test_zero_probability_never_fires(http_upstream: Upstream, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(http_upstream.address)
    proxy.faults.add(rule(type="abort", probability="0%", arm="all"))
    url = f"http://{proxy.listen_address}/echo"
    async with aiohttp.ClientSession() as s:
        assert [await status_of(s, url, EXP) for _ in range(50)] == [200] * 50


@pytest.mark.asyncio
async def test_latency_delays_the_faulted_arm_by_delay_plus_jitter(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    proxy.faults.add(rule(type="latency", delay="150ms", jitter="50ms"))
    url = f"http://{proxy.listen_address}/echo"
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as s:
        t0 = loop.time()
        assert await status_of(s, url, EXP) == 200
        slow = loop.time() - t0
        t0 = loop.time()
        assert await status_of(s, url, CTL) == 200
        fast = loop.time() - t0
    assert 0.14 <= slow < 0.6  # uvloop's clock ticks in ms
    assert fast < 0.1
    store = proxy.observations
    assert store is not None
    assert list(store.column("fault")) == [1, 0]
    assert store.column("latency")[0] >= 0.14


@pytest.mark.asyncio
async def test_latency_combines_with_abort(http_upstream: Upstream, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(http_upstream.address)
    proxy.faults.add(rule(type="latency", delay="100ms"))
    proxy.faults.add(rule(type="abort", status=503))
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as s:
        t0 = loop.time()
        assert await status_of(s, f"http://{proxy.listen_address}/echo", EXP) == 503
        assert loop.time() - t0 >= 0.09
    assert http_upstream.seen == []


@pytest.mark.asyncio
async def test_reset_sends_rst_to_the_client_and_records_it(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    proxy.faults.add(rule(type="reset"))
    proxy.faults.add(rule(type="abort", status=503))  # reset comes first in the order
    with pytest.raises(ConnectionResetError):
        await raw_request(
            str(proxy.listen_address),
            b"GET /echo HTTP/1.1\r\nHost: x\r\nx-mlchaos-arm: experiment\r\n\r\n",
        )
    ok = await raw_request(str(proxy.listen_address), b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert ok.status == 200, "the reset touches one connection, not the proxy"
    store = proxy.observations
    assert store is not None
    assert list(store.column("error")) == [ErrorKind.RESET, ErrorKind.OK]
    assert list(store.column("fault")) == [1, 0]
    assert http_upstream.seen[0].headers.get(ARM_HEADER) is None


@pytest.mark.asyncio
async def test_hang_never_answers_until_the_client_gives_up(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    proxy.faults.add(rule(type="hang"))
    reader, writer = await connect(proxy)
    try:
        writer.write(b"GET /echo HTTP/1.1\r\nHost: x\r\nx-mlchaos-arm: experiment\r\n\r\n")
        with pytest.raises(TimeoutError):
            await read_response(reader, limit=0.3)
        assert proxy.stats().open_connections == 1, "the hung connection stays open"
    finally:
        writer.close()
    for _ in range(50):
        if proxy.stats().open_connections == 0:
            break
        await asyncio.sleep(0.01)
    store = proxy.observations
    assert store is not None
    assert list(store.column("error")) == [ErrorKind.TIMEOUT]
    assert list(store.column("fault")) == [1]
    assert store.column("latency")[0] >= 0.25
    assert http_upstream.seen == []


@pytest.mark.asyncio
async def test_fault_added_through_the_lease_ends_by_itself(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    proxy.faults.add(rule(type="abort", status=503), Duration(0.15))
    url = f"http://{proxy.listen_address}/echo"
    async with aiohttp.ClientSession() as s:
        assert await status_of(s, url, EXP) == 503
        await asyncio.sleep(0.25)
        assert await status_of(s, url, EXP) == 200
