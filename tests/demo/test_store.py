"""The feature store: Feast's online API shapes over SQLite, as its own process."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from mlchaos.demo._services import ServiceGroup, ServiceSpec
from mlchaos.demo._store import format_timestamp, parse_timestamp

FEATURES = ["entity_features:f1", "entity_features:f2", "entity_features:f3"]


def demo_spec(name: str, *args: str) -> ServiceSpec:
    argv = [sys.executable, "-m", "mlchaos.demo", *args, "--port", "0"]
    return ServiceSpec(name, argv, ready_timeout=20.0)


def push_body(ids: list[int], base: float, when: float) -> dict[str, Any]:
    return {
        "push_source_name": "entity_features",
        "df": {
            "entity_id": ids,
            "f1": [base + i for i in ids],
            "f2": [base - i for i in ids],
            "f3": [base * 2] * len(ids),
            "event_timestamp": [format_timestamp(when)] * len(ids),
        },
        "to": "online",
    }


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[ServiceGroup, str]]:
    async with ServiceGroup() as group:
        service = await group.start(demo_spec("store", "store", "--db", str(tmp_path / "f.db")))
        yield group, f"http://127.0.0.1:{service.port}"


async def post(http: aiohttp.ClientSession, url: str, body: object) -> tuple[int, Any]:
    async with http.post(url, json=body) as r:
        return r.status, await r.json()


def test_timestamps_are_written_like_feast_and_read_back() -> None:
    text = format_timestamp(1_795_896_850.123456)
    assert text == "2026-11-28T20:14:10.123456Z"
    assert parse_timestamp(text) == pytest.approx(1_795_896_850.123456)
    assert parse_timestamp("2026-11-28T20:14:10+00:00") == 1_795_896_850.0


@pytest.mark.asyncio
async def test_pushed_features_come_back_column_oriented_with_statuses(
    store: tuple[ServiceGroup, str],
) -> None:
    _, url = store
    now = time.time()
    async with aiohttp.ClientSession() as http:
        assert await post(http, f"{url}/push", push_body([1, 2], 10.0, now)) == (
            200,
            {"written": 2},
        )
        status, doc = await post(
            http,
            f"{url}/get-online-features",
            {
                "features": FEATURES,
                "entities": {"entity_id": [2, 7, 1]},
                "full_feature_names": False,
            },
        )
    assert status == 200
    # Like real Feast: the entity column first, the features not in the order asked for.
    assert doc["metadata"] == {"feature_names": ["entity_id", "f3", "f2", "f1"]}
    entity, f3, f2, f1 = doc["results"]
    assert entity == {
        "values": [2, 7, 1],
        "statuses": ["PRESENT"] * 3,
        "event_timestamps": ["1970-01-01T00:00:00Z"] * 3,
    }
    assert f1["values"] == [12.0, None, 11.0]
    assert f2["values"] == [8.0, None, 9.0]
    assert f3["values"] == [20.0, None, 20.0]
    assert f1["statuses"] == ["PRESENT", "NOT_FOUND", "PRESENT"]
    assert f1["event_timestamps"][0] == format_timestamp(now)
    assert f1["event_timestamps"][1] == "1970-01-01T00:00:00Z"


@pytest.mark.asyncio
async def test_full_feature_names_and_a_subset_of_features(
    store: tuple[ServiceGroup, str],
) -> None:
    _, url = store
    async with aiohttp.ClientSession() as http:
        await post(http, f"{url}/push", push_body([3], 1.0, time.time()))
        status, doc = await post(
            http,
            f"{url}/get-online-features",
            {
                "features": ["entity_features:f3"],
                "entities": {"entity_id": [3]},
                "full_feature_names": True,
            },
        )
    assert status == 200
    assert doc["metadata"]["feature_names"] == ["entity_id", "entity_features__f3"]
    assert doc["results"][1]["values"] == [2.0]


@pytest.mark.asyncio
async def test_a_push_upserts_and_an_older_push_never_overwrites_fresher_rows(
    store: tuple[ServiceGroup, str],
) -> None:
    _, url = store
    now = time.time()
    query = {"features": FEATURES[:1], "entities": {"entity_id": [5]}}
    async with aiohttp.ClientSession() as http:
        await post(http, f"{url}/push", push_body([5], 1.0, now - 10))
        await post(http, f"{url}/push", push_body([5], 2.0, now))
        await post(http, f"{url}/push", push_body([5], 3.0, now - 5))  # late, older
        _, doc = await post(http, f"{url}/get-online-features", query)
    assert doc["results"][1]["values"] == [7.0]
    assert doc["results"][1]["event_timestamps"] == [format_timestamp(now)]


def _with_df(**columns: object) -> dict[str, Any]:
    body = push_body([1], 1.0, 0.0)
    return {**body, "df": {**body["df"], **columns}}


BAD_REQUESTS: list[tuple[str, object]] = [
    ("get-online-features", {"features": ["entity_features:f9"], "entities": {"entity_id": [1]}}),
    ("get-online-features", {"features": ["other:f1"], "entities": {"entity_id": [1]}}),
    ("get-online-features", {"features": FEATURES, "entities": {"user_id": [1]}}),
    ("get-online-features", {"features": FEATURES, "entities": {"entity_id": ["a"]}}),
    ("get-online-features", {"features": [], "entities": {"entity_id": [1]}}),
    ("get-online-features", [1, 2]),
    ("push", {"push_source_name": "nope", "df": {}}),
    ("push", {**push_body([1], 1.0, 0.0), "to": "offline"}),
    ("push", {"push_source_name": "entity_features", "df": {"entity_id": [1]}}),
    ("push", _with_df(f1=[1.0, 2.0])),
    ("push", _with_df(f2=["x"])),
    ("push", _with_df(entity_id=[1.5])),
    ("push", _with_df(event_timestamp=["yesterday"])),
]


@pytest.mark.asyncio
async def test_unknown_features_and_malformed_bodies_are_answered_400(
    store: tuple[ServiceGroup, str],
) -> None:
    _, url = store
    async with aiohttp.ClientSession() as http:
        for path, body in BAD_REQUESTS:
            status, doc = await post(http, f"{url}/{path}", body)
            assert status == 400, (path, body)
            assert isinstance(doc["error"], str)
            async with http.post(f"{url}/{path}", data=b"{not json") as r:
                assert r.status == 400


@pytest.mark.asyncio
async def test_health_and_a_clean_exit_on_sigint(store: tuple[ServiceGroup, str]) -> None:
    group, url = store
    async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as r:
        assert r.status == 200
        assert await r.json() == {"ok": True}
    service = group.service("store")
    await group.kill("store", signal.SIGINT)
    assert await service.wait() == 0
    assert not any("Traceback" in line for line in service.log_tail())


@pytest.mark.asyncio
async def test_a_stored_null_comes_back_null_and_present_as_in_feast(
    store: tuple[ServiceGroup, str],
) -> None:
    _, url = store
    body = push_body([9], 1.0, time.time())
    body["df"]["f2"] = [None]
    query = {"features": FEATURES, "entities": {"entity_id": [9]}}
    async with aiohttp.ClientSession() as http:
        assert (await post(http, f"{url}/push", body))[0] == 200
        _, doc = await post(http, f"{url}/get-online-features", query)
    columns = dict(zip(doc["metadata"]["feature_names"], doc["results"], strict=True))
    assert columns["f2"]["values"] == [None] and columns["f2"]["statuses"] == ["PRESENT"]
    assert columns["f1"]["values"] == [10.0]
