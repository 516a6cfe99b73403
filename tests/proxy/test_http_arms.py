"""Arm assignment in the HTTP proxy: header first, then a stable key hash, then the shares."""

from __future__ import annotations

import json
import random
from collections import Counter

import aiohttp
import pytest

from mlchaos.arms import ARM_HEADER, Arm, ArmCode, arm_for_key, arm_for_unit
from mlchaos.proxy._assign import json_key
from tests.proxy.conftest import MakeProxy, Upstream


async def arms_of(
    url: str,
    n: int,
    *,
    headers: list[dict[str, str]] | None = None,
    bodies: list[bytes] | None = None,
) -> list[tuple[str | None, str | None]]:
    """(arm the upstream saw, arm the client got back) for ``n`` requests."""
    out = []
    async with aiohttp.ClientSession() as s:
        for i in range(n):
            h = headers[i] if headers else {}
            data = bodies[i] if bodies else None
            async with s.post(url, headers=h, data=data) as r:
                assert r.status == 200
                seen = (await r.json())["arm"]
                out.append((seen, r.headers.get(ARM_HEADER)))
    return out


@pytest.mark.asyncio
async def test_arm_header_decides_and_travels_both_ways(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address, arms={"experiment": "100%"})
    values = ["experiment", "control", "Control ", "bogus"]
    got = await arms_of(
        f"http://{proxy.listen_address}/echo",
        len(values),
        headers=[{ARM_HEADER: v} for v in values],
    )
    assert got == [
        ("experiment", "experiment"),
        ("control", "control"),
        ("control", "control"),
        (None, None),  # an unknown value puts the request in no arm, whatever the shares
    ]


@pytest.mark.asyncio
async def test_shares_assign_at_random_in_proportion(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(
        http_upstream.address, arms={"experiment": "30%", "control": "30%"}, seed=7
    )
    n = 300
    got = await arms_of(f"http://{proxy.listen_address}/echo", n)
    counts = Counter(seen for seen, _ in got)
    assert all(seen == back for seen, back in got)
    # Seeded, so the counts are exact: the draws of arm_for_unit on Random(7), one per request
    # (a 30% share read as 50%, or a second draw per request, changes them).
    rng = random.Random(7)
    expected = Counter(arm_for_unit(rng.random(), 0.3, 0.3) for _ in range(n))
    assert counts["experiment"] == expected[Arm.EXPERIMENT]
    assert counts["control"] == expected[Arm.CONTROL]
    assert counts[None] == expected[None]


@pytest.mark.asyncio
async def test_key_header_hash_is_stable_and_matches_arm_for_key(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    split = {"experiment": "40%", "control": "40%", "key": {"header": "x-entity"}, "salt": "s1"}
    proxy = await make_proxy(http_upstream.address, arms=split)
    keys = [f"user-{i}" for i in range(40)]
    url = f"http://{proxy.listen_address}/echo"
    first = await arms_of(url, len(keys), headers=[{"x-entity": k} for k in keys])
    again = await arms_of(url, len(keys), headers=[{"x-entity": k} for k in keys])
    assert first == again, "the same key must land in the same arm every time"
    expected = [arm_for_key(k, 0.4, 0.4, "s1") for k in keys]
    assert [seen for seen, _ in first] == [a.value if a else None for a in expected]
    assert {seen for seen, _ in first} == {"experiment", "control", None}


@pytest.mark.asyncio
async def test_json_field_key_hashes_the_body_field(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    split = {"experiment": "50%", "control": "50%", "key": {"json_field": "parameters.entity"}}
    proxy = await make_proxy(http_upstream.address, arms=split)
    ids = list(range(1000, 1030))
    bodies = [json.dumps({"parameters": {"entity": i}, "inputs": [1, 2]}).encode() for i in ids]
    got = await arms_of(f"http://{proxy.listen_address}/echo", len(ids), bodies=bodies)
    expected = [arm_for_key(str(i), 0.5, 0.5) for i in ids]
    assert [seen for seen, _ in got] == [a.value if a else None for a in expected]
    assert http_upstream.seen[0].body == bodies[0], "the body is forwarded untouched"


@pytest.mark.asyncio
async def test_request_without_the_key_falls_back_to_the_shares(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    split = {"control": "100%", "key": {"header": "x-entity"}}
    proxy = await make_proxy(http_upstream.address, arms=split)
    got = await arms_of(f"http://{proxy.listen_address}/echo", 3)
    assert got == [("control", "control")] * 3


@pytest.mark.asyncio
async def test_no_shares_means_no_arm_and_no_header(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    got = await arms_of(f"http://{proxy.listen_address}/echo", 3)
    assert got == [(None, None)] * 3
    store = proxy.observations
    assert store is not None
    assert list(store.column("arm")) == [ArmCode.NONE] * 3


def test_json_key_reads_dotted_paths_and_numbers_as_json_text() -> None:
    body = b'{"a": {"b": [10, {"c": 1001.0}]}, "s": "k", "t": true}'
    assert json_key(body, ("a", "b", "1", "c")) == b"1001"
    assert json_key(body, ("s",)) == b"k"
    assert json_key(body, ("t",)) == b"true"
    assert json_key(body, ("a",)) is None, "an object is not a key"
    assert json_key(body, ("missing",)) is None
    assert json_key(b"not json", ("a",)) is None
    assert arm_for_key("1001", 1.0, 0.0) is Arm.EXPERIMENT
