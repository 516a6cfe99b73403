"""Live cohorts on running proxies: stable arms across proxies, the edge's log, the lease."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from mlchaos.arms import ARM_HEADER, arm_for_key
from mlchaos.errors import ControlAPIError
from mlchaos.proxy import AbortRule, ControlClient, ProxyServer
from mlchaos.proxy._live import Cohorts
from tests.proxy.conftest import Echo, MakeProxy, Upstream


def client(proxy: ProxyServer) -> ControlClient:
    return ControlClient(proxy.control_url, proxy.token)


def cohorts(**extra: object) -> Cohorts:
    return Cohorts.model_validate({"experiment": "30%", "control": "30%", "salt": "s1", **extra})


async def seen_arm(s: aiohttp.ClientSession, url: str, body: object, **headers: str) -> str | None:
    async with s.post(url, data=json.dumps(body), headers=headers) as r:
        assert r.status == 200
        arm: str | None = (await r.json())["arm"]
        return arm


@pytest.mark.asyncio
async def test_the_same_key_lands_in_the_same_arm_at_the_edge_and_at_a_dependency(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    """The edge hashes the user id of the client's request, the dependency the id inside its
    own (differently shaped) request: with the same cohorts both agree with arm_for_key."""
    edge = await make_proxy(http_upstream.address)
    dep = await make_proxy(http_upstream.address)
    async with client(edge) as e, client(dep) as d:
        await e.set_cohorts(cohorts(edge=True, key={"json_field": "user.id"}))
        await d.set_cohorts(cohorts(key={"json_field": "entities.entity_id.0"}))
        async with aiohttp.ClientSession() as s:
            for k in range(200):
                expected = arm_for_key(str(k), 0.3, 0.3, "s1")
                want = None if expected is None else expected.value
                at_edge = await seen_arm(s, f"http://{edge.listen_address}/p", {"user": {"id": k}})
                at_dep = await seen_arm(
                    s,
                    f"http://{dep.listen_address}/f",
                    {"features": ["f1"], "entities": {"entity_id": [k]}},
                )
                assert (at_edge, at_dep) == (want, want), f"key {k}"


@pytest.mark.asyncio
async def test_a_live_edge_ignores_an_arm_header_sent_by_a_client(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    edge = await make_proxy(http_upstream.address)
    rest = next(k for k in range(100) if arm_for_key(str(k), 0.3, 0.3, "s1") is None)
    async with client(edge) as e, aiohttp.ClientSession() as s:
        await e.set_cohorts(cohorts(edge=True, key={"header": "x-user"}))
        url = f"http://{edge.listen_address}/p"
        got = await seen_arm(s, url, {}, **{ARM_HEADER: "experiment", "x-user": str(rest)})
        assert got is None
        # Without a key, a live request is in no arm: never assigned at random.
        assert {await seen_arm(s, url, {}) for _ in range(30)} == {None}


@pytest.mark.asyncio
async def test_a_dependency_takes_the_propagated_arm_header(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    dep = await make_proxy(http_upstream.address)
    async with client(dep) as d, aiohttp.ClientSession() as s:
        await d.set_cohorts(cohorts())
        got = await seen_arm(s, f"http://{dep.listen_address}/f", {}, **{ARM_HEADER: "control"})
        assert got == "control"


@pytest.mark.asyncio
async def test_the_edge_logs_each_cohort_request_with_the_values_its_answer_holds_at_the_paths(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    edge = await make_proxy(http_upstream.address)
    read = {"model": "method", "prediction": "length", "degradation": "path"}
    async with client(edge) as e, aiohttp.ClientSession() as s:
        await e.set_cohorts(cohorts(edge=True, key={"header": "x-user"}, read=read))
        await e.add_fault(AbortRule(type="abort", status=503, arm="experiment"))
        arms = {}
        for k in range(120):
            async with s.post(
                f"http://{edge.listen_address}/echo", data=b"abc", headers={"x-user": str(k)}
            ) as r:
                await r.read()
                arms[str(k)] = r.status
        page = await e.observations(0)
    rows = [dict(zip(page["fields"], row, strict=True)) for row in page["rows"]]
    in_cohorts = {k for k in arms if arm_for_key(k, 0.3, 0.3, "s1") is not None}
    assert {r["key"] for r in rows} == in_cohorts  # one row per cohort request, none for the rest
    assert len(rows) == len(in_cohorts) == page["next"]
    for r in rows:
        if r["arm"] == 1:  # experiment: the abort answered
            assert (r["status"], r["fault"], r["model"]) == (503, 1, None)
        else:
            assert (r["status"], r["fault"], r["model"]) == (200, 0, "POST")
            assert (r["prediction"], r["degradation"]) == (3, "/echo")  # raw JSON values
        assert r["latency"] >= 0  # uvloop's clock ticks in whole ms
    async with client(edge) as e:
        later = await e.observations(page["next"])
    assert later["rows"] == [] and later["next"] == page["next"]


@pytest.mark.asyncio
async def test_cohorts_lapse_with_their_lease_and_can_be_cleared(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    edge = await make_proxy(http_upstream.address)
    async with client(edge) as e:
        assert await e.set_cohorts(cohorts(edge=True, lease="300ms")) == pytest.approx(0.3)
        assert (await e.cohorts())["cohorts"]["salt"] == "s1"
        await asyncio.sleep(0.6)
        assert (await e.cohorts())["cohorts"] is None
        with pytest.raises(ControlAPIError, match="no cohorts"):
            await e.renew_cohorts()
        await e.set_cohorts(cohorts(edge=True))
        assert await e.clear_cohorts() is True
        assert await e.clear_cohorts() is False
        with pytest.raises(ControlAPIError, match="logs no observations"):
            await e.observations(0)


@pytest.mark.asyncio
async def test_bad_live_requests_get_a_clear_answer(
    http_upstream: Upstream, tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    tcp = await make_proxy(tcp_echo.address, protocol="tcp")
    edge = await make_proxy(http_upstream.address)
    async with client(tcp) as t:
        with pytest.raises(ControlAPIError, match="TCP proxy cannot"):
            await t.set_cohorts(cohorts())
    headers = {"Authorization": f"Bearer {edge.token}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        bad = {"experiment": "70%", "control": "50%"}
        async with s.put(f"{edge.control_url}/cohorts", json=bad) as r:
            assert r.status == 400
            assert "together exceed 100%" in (await r.json())["error"]
        async with client(edge) as e:
            await e.set_cohorts(cohorts(edge=True))
        async with s.get(f"{edge.control_url}/observations?after=-1") as r:
            assert r.status == 400
            assert "whole number" in (await r.json())["error"]
    async with aiohttp.ClientSession() as s, s.put(f"{edge.control_url}/cohorts", json={}) as r:
        assert r.status == 401
