"""Control APIs meet deeply nested JSON with a 400, and never store a value they cannot send."""

from __future__ import annotations

import json

import aiohttp
import pytest

from mlchaos.agent import AgentServer
from tests.proxy.conftest import MakeProxy, Upstream


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.asyncio
async def test_the_proxy_refuses_deep_bodies_and_deep_values_and_stays_json(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    url = f"{proxy.control_url}/faults"
    deep_set = {"rule": {"type": "rewrite", "response": [{"path": "a", "set": nested(40)}]}}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {proxy.token}"}) as s:
        bomb = b"[" * 100_000 + b"]" * 100_000
        async with s.post(url, data=bomb, headers={"content-type": "application/json"}) as r:
            assert r.status == 400
            assert "nested more than 32 levels" in (await r.json())["error"]
        async with s.post(url, json=deep_set) as r:
            assert r.status == 400
        async with s.get(url) as r:
            assert r.status == 200 and json.loads(await r.text()) == {"faults": []}


@pytest.mark.asyncio
async def test_the_agent_refuses_deep_bodies_with_a_400() -> None:
    async with (
        AgentServer() as agent,
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {agent.token}"}) as s,
        s.post(
            f"{agent.url}/faults",
            data=b"{" + b'"a":{' * 50_000 + b"}" * 50_001,
            headers={"content-type": "application/json"},
        ) as r,
    ):
        assert r.status == 400
        assert "nested more than 32 levels" in (await r.json())["error"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"id": "p", "action": "partition", "process": {"port": 1}}, "peer"),
        (
            {
                "id": "p",
                "action": "partition",
                "process": {"port": 1},
                "peer": {"port": 2},
                "mode": "quiet",
            },
            "'silent' or 'loud'",
        ),
        (
            {
                "id": "p",
                "action": "partition",
                "process": {"port": 1},
                "peer": {"port": 2},
                "direction": "up",
            },
            "'both', 'outbound' or 'inbound'",
        ),
        ({"id": "g", "action": "gpu_memory", "process": {"port": 1}}, "give one of 'leave_free'"),
        (
            {"id": "g", "action": "gpu_memory", "process": {"port": 1}, "leave_free": -1},
            "greater than or equal to 0",
        ),
        (
            {"id": "g", "action": "gpu_memory", "process": {"port": 1}, "leave_free_share": 1},
            "less than 1",
        ),
    ],
)
async def test_the_agent_refuses_a_malformed_partition_or_gpu_fault_with_a_400(
    body: dict[str, object], said: str
) -> None:
    async with (
        AgentServer() as agent,
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {agent.token}"}) as s,
    ):
        async with s.post(f"{agent.url}/faults", json=body) as r:
            assert r.status == 400
            assert said in (await r.json())["error"]
        async with s.get(f"{agent.url}/faults") as r:
            assert (await r.json()) == {"faults": []}
