"""The feature pipeline, as its own process, feeding a real feature store process."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mlchaos.demo._services import ServiceGroup, ServiceSpec
from mlchaos.demo._store import parse_timestamp
from tests.conftest import free_port

FEATURES = ["entity_features:f1", "entity_features:f2", "entity_features:f3"]


def demo_spec(name: str, *args: str, port: int = 0) -> ServiceSpec:
    argv = [sys.executable, "-m", "mlchaos.demo", *args, "--port", str(port)]
    return ServiceSpec(name, argv, ready_timeout=20.0)


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as r:
        assert r.status == 200
        return await r.json()


async def wait_for_writes(http: aiohttp.ClientSession, url: str, at_least: int) -> Any:
    async with asyncio.timeout(10):
        while True:
            health = await get_json(http, f"{url}/health")
            if health["writes"] >= at_least:
                return health
            await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_features_of_every_entity_appear_fresh_in_feast_shape(tmp_path: Path) -> None:
    async with ServiceGroup() as group, aiohttp.ClientSession() as http:
        store = await group.start(demo_spec("store", "store", "--db", str(tmp_path / "f.db")))
        store_url = f"http://127.0.0.1:{store.port}"
        pipeline = await group.start(
            demo_spec("pipeline", "pipeline", "--store", store_url, "--interval", "0.1")
        )
        pipeline_url = f"http://127.0.0.1:{pipeline.port}"
        health = await wait_for_writes(http, pipeline_url, 3)
        assert health["ok"] is True
        assert time.time() - health["last_write"] < 2

        query = {"features": FEATURES, "entities": {"entity_id": list(range(200))}}
        async with http.post(f"{store_url}/get-online-features", json=query) as r:
            doc = await r.json()
        first = doc["results"][1]
        assert first["statuses"] == ["PRESENT"] * 200
        assert all(isinstance(v, float) for v in first["values"])
        stamps = [parse_timestamp(t) for t in first["event_timestamps"]]
        assert all(time.time() - s < 2 for s in stamps)

        await wait_for_writes(http, pipeline_url, health["writes"] + 3)
        async with http.post(f"{store_url}/get-online-features", json=query) as r:
            later = await r.json()
        assert later["results"][1]["values"] != first["values"]  # recomputed every tick

        assert await group.stop("pipeline") == 0
        assert not any("Traceback" in line for line in pipeline.log_tail())


@pytest.mark.asyncio
async def test_an_unreachable_store_is_logged_once_and_retried_until_it_is_back(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with ServiceGroup() as group, aiohttp.ClientSession() as http:
        pipeline = await group.start(
            demo_spec(
                "pipeline", "pipeline", "--store", f"http://127.0.0.1:{port}", "--interval", "0.05"
            )
        )
        pipeline_url = f"http://127.0.0.1:{pipeline.port}"
        deadline = asyncio.get_running_loop().time() + 30
        while (health := await get_json(http, f"{pipeline_url}/health"))["failed_pushes"] < 5:
            assert asyncio.get_running_loop().time() < deadline, health
            await asyncio.sleep(0.05)
        assert (health["writes"], health["last_write"]) == (0, None)
        complaints = [line for line in pipeline.log_tail() if "cannot push" in line]
        assert len(complaints) == 1

        await group.start(demo_spec("store", "store", "--db", str(tmp_path / "f.db"), port=port))
        await wait_for_writes(http, pipeline_url, 2)
        assert group.running("pipeline")
        assert any("again" in line for line in pipeline.log_tail())
