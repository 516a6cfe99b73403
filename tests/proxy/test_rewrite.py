"""Data faults: JSON request and response bodies rewritten for the faulted arm only."""

from __future__ import annotations

import json
import math
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from mlchaos.arms import ARM_HEADER
from mlchaos.proxy import Rule
from mlchaos.proxy._rewrite import apply_edits
from mlchaos.proxy._rules import Edit
from mlchaos.spec import FeastMissingFault
from tests.proxy.conftest import MakeProxy, Upstream, _serve_app

RULE = TypeAdapter[Rule](Rule)
EXP = {ARM_HEADER: "experiment"}
CTL = {ARM_HEADER: "control"}

FEAST = {
    "metadata": {"feature_names": ["entity_id", "f1", "f2", "f3"]},
    "results": [
        {"values": [7, 8], "statuses": ["PRESENT"] * 2, "event_timestamps": ["t0", "t0"]},
        {"values": [0.1, 0.2], "statuses": ["PRESENT"] * 2, "event_timestamps": ["t1", "t1"]},
        {"values": [1.5, 2.5], "statuses": ["PRESENT"] * 2, "event_timestamps": ["t1", "t1"]},
        {"values": [3.0, 4.0], "statuses": ["PRESENT"] * 2, "event_timestamps": ["t1", "t1"]},
    ],
}


def rule(**data: object) -> Rule:
    return RULE.validate_python(data)


def test_paths_edits_and_wildcards_change_only_what_they_name() -> None:
    doc: dict[str, Any] = json.loads(json.dumps(FEAST))
    edits = [
        Edit(path="results[*].values[0]", scale=2.0, shift=1.0),
        Edit(path="results[3].values[1]", set="NaN"),
        Edit(path="results[2]", drop=True),
        Edit(path="metadata.nothing.here", set=1),  # matches nothing: no change
    ]
    assert apply_edits(doc, edits) == 6
    assert [c["values"][0] for c in doc["results"]] == [15, 1.2, 7.0]
    assert math.isnan(doc["results"][2]["values"][1])
    assert len(doc["results"]) == 3
    with pytest.raises(ValidationError, match="exactly one of"):
        Edit(path="a", set=1, drop=True)
    with pytest.raises(ValidationError, match=r"expected \[number\]"):
        Edit(path="a[", drop=True)


@pytest.mark.asyncio
async def test_response_and_request_edits_and_status_hit_the_experiment_arm_only(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    proxy.faults.add(
        rule(
            type="rewrite",
            request=[{"path": "x", "set": None}],
            response=[{"path": "length", "scale": 10}, {"path": "method", "drop": True}],
            status=503,
        )
    )
    url = f"http://{proxy.listen_address}/echo"
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json={"x": 1, "y": 2}, headers=EXP) as r:
            faulted = await r.json()
            assert r.status == 503
            assert r.headers[ARM_HEADER] == "experiment"
        async with s.post(url, json={"x": 1, "y": 2}, headers=CTL) as r:  # same connection
            plain = await r.json()
            assert r.status == 200
    assert json.loads(faulted["body"]) == {"x": None, "y": 2}  # the upstream saw the edit
    assert faulted["length"] == 10 * len(b'{"x":null,"y":2}')
    assert "method" not in faulted
    assert json.loads(plain["body"]) == {"x": 1, "y": 2}
    assert plain["method"] == "POST"
    assert list(proxy.observations.column("status")) == [503, 200]  # type: ignore[union-attr]
    assert list(proxy.observations.column("fault")) == [1, 0]  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_the_feast_preset_compiled_to_a_rewrite_makes_named_features_missing(
    make_proxy: MakeProxy,
) -> None:
    async def feast(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        raw = json.dumps(FEAST).encode()
        for i in range(0, len(raw), 40):
            await resp.write(raw[i : i + 40])
        await resp.write_eof()
        return resp

    async def text(request: web.Request) -> web.Response:
        return web.Response(text="not json")

    app = web.Application()
    app.router.add_post("/get-online-features", feast)
    app.router.add_get("/text", text)
    runner, port = await _serve_app(app)
    try:
        proxy = await make_proxy(f"127.0.0.1:{port}")
        preset = {"type": "feast_missing", "target": "p", "features": ["entity_features:f1", "f3"]}
        proxy.faults.add(FeastMissingFault.model_validate(preset | {"status": "NOT_FOUND"}).rule())
        base = f"http://{proxy.listen_address}"
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{base}/get-online-features", json={}, headers=EXP) as r:
                doc = await r.json()
            async with s.post(f"{base}/get-online-features", json={}, headers=CTL) as r:
                untouched = await r.json()
            async with s.get(f"{base}/text", headers=EXP) as r:
                assert await r.text() == "not json"  # passes as it was
    finally:
        await runner.cleanup()
    results = doc["results"]
    assert results[0]["values"] == [7, 8]  # the entity key is never touched
    assert results[1] == {  # as real Feast answers a value it did not find
        "values": [None, None],
        "statuses": ["NOT_FOUND"] * 2,
        "event_timestamps": ["1970-01-01T00:00:00Z"] * 2,
    }
    assert results[2] == FEAST["results"][2]
    assert results[3]["statuses"] == ["NOT_FOUND"] * 2
    assert untouched == FEAST


@pytest.mark.asyncio
async def test_the_control_api_takes_rewrite_rules_and_refuses_malformed_edits(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    from mlchaos.proxy import ControlClient

    proxy = await make_proxy(http_upstream.address)
    headers = {"Authorization": f"Bearer {proxy.token}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        url = f"{proxy.control_url}/faults"
        where = {"names": "metadata.feature_names", "pattern": "f1", "skip": 1}
        edit = {"path": "results[?].values[*]", "set": None, "where": where}
        good = {"rule": {"type": "rewrite", "response": [edit]}}
        async with s.post(url, json=good) as r:
            assert r.status == 201
        preset = {"rule": {"type": "feast_missing"}}  # the proxy knows no Feast
        async with s.post(url, json=preset) as r:
            assert r.status == 400
        bad = {"rule": {"type": "rewrite", "response": [{"path": "a", "set": 1, "drop": True}]}}
        async with s.post(url, json=bad) as r:
            assert r.status == 400
            assert "exactly one of" in (await r.json())["error"]
    async with ControlClient(proxy.control_url, proxy.token) as client:
        assert [f.rule.type for f in await client.list_faults()] == ["rewrite"]


def test_a_feature_matches_in_every_form_feast_names_it_and_no_other() -> None:
    doc: dict[str, Any] = {
        "metadata": {"feature_names": ["f1", "v:f1", "v__f1", "f10", "f1x", "v:f2", "f1"]},
        "results": [{"values": [i], "statuses": ["PRESENT"]} for i in range(7)],
    }
    compiled = FeastMissingFault.model_validate(
        {"type": "feast_missing", "target": "p", "features": ["other_view:f1"]}
    ).rule()
    assert compiled.type == "rewrite"
    apply_edits(doc, list(compiled.response))  # type: ignore[union-attr]
    missing = [r["values"] == [None] for r in doc["results"]]
    # the first column is the entity key; f10, f1x and f2 are other features
    assert missing == [False, True, True, False, False, False, True]
    assert doc["results"][1]["statuses"] == ["NOT_FOUND"]


def test_a_where_needs_a_selecting_step_and_a_valid_pattern() -> None:
    where = {"names": "metadata.feature_names", "pattern": "f1"}
    with pytest.raises(ValidationError, match=r"'\[\?\]' step in the path and 'where'"):
        Edit(path="results[*].values", set=None, where=where)
    with pytest.raises(ValidationError, match=r"'\[\?\]' step in the path and 'where'"):
        Edit(path="results[?].values", set=None)
    with pytest.raises(ValidationError, match="pattern"):
        Edit(path="results[?]", set=None, where=where | {"pattern": "("})


@pytest.mark.asyncio
async def test_a_batched_lookup_is_faulted_only_in_the_rows_of_the_faulted_arm(
    make_proxy: MakeProxy,
) -> None:
    """Four users, two join keys (user and item), the arm keyed on each row's user: the preset
    nulls f1 only for the experiment arm's users, and never a join key column, whatever its
    position."""
    from mlchaos.arms import Arm, arm_for_key

    users, items = [11, 12, 13, 14, 15, 16], [1, 1, 2, 2, 3, 3]
    answer = {
        "metadata": {"feature_names": ["user_id", "item_id", "v__f1", "v__f2"]},
        "results": [
            {"values": users, "statuses": ["PRESENT"] * 6, "event_timestamps": ["t0"] * 6},
            {"values": items, "statuses": ["PRESENT"] * 6, "event_timestamps": ["t0"] * 6},
            {"values": [0.5] * 6, "statuses": ["PRESENT"] * 6, "event_timestamps": ["t1"] * 6},
            {"values": [2.5] * 6, "statuses": ["PRESENT"] * 6, "event_timestamps": ["t1"] * 6},
        ],
    }

    async def feast(request: web.Request) -> web.Response:
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/get-online-features", feast)
    runner, port = await _serve_app(app)
    split = {"experiment": "50%", "control": "50%", "salt": "s"}
    key = {"json_field": "entities.user_id[*]"}
    try:
        proxy = await make_proxy(f"127.0.0.1:{port}", arms={**split, "key": key})
        preset = {"type": "feast_missing", "target": "p", "features": ["f1"]}
        proxy.faults.add(FeastMissingFault.model_validate(preset).rule())
        # (a preset for every feature must still leave both join keys alone)
        every = {"type": "feast_missing", "target": "p", "arm": "control"}
        proxy.faults.add(FeastMissingFault.model_validate(every).rule())
        request = {"features": ["v:f1", "v:f2"], "entities": {"user_id": users, "item_id": items}}
        async with (
            aiohttp.ClientSession() as s,
            s.post(f"http://{proxy.listen_address}/get-online-features", json=request) as r,
        ):
            doc = await r.json()
    finally:
        await runner.cleanup()
    arms = [arm_for_key(str(u), 0.5, 0.5, "s") for u in users]
    assert Arm.EXPERIMENT in arms and Arm.CONTROL in arms
    results = doc["results"]
    assert results[0]["values"] == users and results[1]["values"] == items
    # f1 is missing for the experiment's users (its fault) and the control's (every feature is
    # missing for them); f2 only for the control's users.
    assert results[2]["values"] == [None] * 6
    assert results[2]["event_timestamps"] == ["1970-01-01T00:00:00Z"] * 6
    assert results[3]["values"] == [2.5 if a is Arm.EXPERIMENT else None for a in arms]
    assert results[3]["statuses"] == [
        "PRESENT" if a is Arm.EXPERIMENT else "NOT_FOUND" for a in arms
    ]
