"""The gateway as its own process, in front of real store and replica processes.

Dead links are closed loopback ports; a tiny in-test aiohttp server stands in for the store and
a replica where a test must see the headers the gateway sends, or a replica that hangs.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from mlchaos.demo._logistic import LinearModel
from mlchaos.demo._models import train_models
from mlchaos.demo._services import ServiceGroup, ServiceSpec
from mlchaos.demo._store import format_timestamp
from tests.conftest import free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

ENTITY = 42
FEATURES = (0.9, -0.4, 1.1)
ARM = "x-mlchaos-arm"


def demo_spec(name: str, *args: str) -> ServiceSpec:
    argv = [sys.executable, "-m", "mlchaos.demo", *args, "--port", "0"]
    return ServiceSpec(name, argv, ready_timeout=20.0)


def url_of(group: ServiceGroup, name: str) -> str:
    return f"http://127.0.0.1:{group.service(name).port}"


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@dataclass
class Backends:
    """Model files, a store holding features of ENTITY, and two replicas, for the module."""

    group: ServiceGroup
    model_dir: Path
    store: str
    replicas: tuple[str, str]
    http: aiohttp.ClientSession
    started: list[str] = field(default_factory=list)

    @property
    def primary(self) -> LinearModel:
        return LinearModel.load(self.model_dir / "primary.json")

    @property
    def fallback(self) -> LinearModel:
        return LinearModel.load(self.model_dir / "fallback.json")

    async def gateway(
        self,
        *,
        replicas: list[str],
        store: str,
        variant: str = "resilient",
        extra: tuple[str, ...] = ("--max-feature-age", "3600"),  # staleness: its own test
    ) -> str:
        name = f"gateway-{len(self.started)}"
        self.started.append(name)
        args = [
            "gateway",
            "--variant",
            variant,
            "--store",
            store,
            "--model-dir",
            str(self.model_dir),
        ]
        for r in replicas:
            args += ["--replica", r]
        await self.group.start(demo_spec(name, *args, *extra))
        return url_of(self.group, name)

    async def infer(
        self,
        gateway: str,
        entity: float = ENTITY,
        x: tuple[float, float] = (0.3, -0.7),
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        body = {
            "id": "r1",
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [1, 3],
                    "datatype": "FP32",
                    "data": [float(entity), *x],
                }
            ],
        }
        async with self.http.post(
            f"{gateway}/v2/models/churn/infer", json=body, headers=headers or {}
        ) as r:
            return r.status, await r.json()


async def push(http: aiohttp.ClientSession, store: str, entity: int, when: float) -> None:
    body = {
        "push_source_name": "entity_features",
        "df": {
            "entity_id": [entity],
            **{f"f{i + 1}": [v] for i, v in enumerate(FEATURES)},
            "event_timestamp": [format_timestamp(when)],
        },
    }
    async with http.post(f"{store}/push", json=body) as r:
        assert r.status == 200


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def backends(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Backends]:
    tmp = tmp_path_factory.mktemp("gateway")
    model_dir = tmp / "models"
    train_models(7, model_dir)
    async with ServiceGroup(grace=3.0) as group, aiohttp.ClientSession() as http:
        await asyncio.gather(
            group.start(demo_spec("store", "store", "--db", str(tmp / "f.db"))),
            *(
                group.start(demo_spec(n, "replica", "--model-dir", str(model_dir), "--name", n))
                for n in ("replica-a", "replica-b")
            ),
        )
        store = url_of(group, "store")
        await push(http, store, ENTITY, time.time())
        replicas = (url_of(group, "replica-a"), url_of(group, "replica-b"))
        yield Backends(group, model_dir, store, replicas, http)


def expected_primary(b: Backends, x: tuple[float, float], features: tuple[float, ...]) -> int:
    return b.primary.predict([*x, *features])[0]


async def test_a_healthy_resilient_gateway_answers_with_primary_round_robin(
    backends: Backends,
) -> None:
    b = backends
    await push(b.http, b.store, ENTITY, time.time())
    gateway = await b.gateway(replicas=list(b.replicas), store=b.store)
    seen = []
    for x in [(0.3, -0.7), (-1.0, 2.0), (1.5, 0.1), (0.0, 0.0)]:
        status, doc = await b.infer(gateway, x=x)
        assert status == 200
        assert doc["model_name"] == "primary"
        assert doc["model_version"] == "1"
        assert doc["id"] == "r1"
        assert doc["outputs"] == [
            {
                "name": "label",
                "shape": [1, 1],
                "datatype": "INT64",
                "data": [expected_primary(b, x, FEATURES)],
            }
        ]
        params = doc["parameters"]
        assert params["degradation"] == "none"
        assert 0 <= params["feature_age_s"] < 5
        seen.append(params["replica"])
    assert seen == ["replica-a", "replica-b", "replica-a", "replica-b"]


async def test_an_unreachable_store_means_default_features(backends: Backends) -> None:
    b = backends
    gateway = await b.gateway(replicas=list(b.replicas), store=dead_url())
    status, doc = await b.infer(gateway)
    assert status == 200
    assert doc["model_name"] == "primary"
    assert doc["parameters"]["degradation"] == "default_features"
    assert doc["parameters"]["feature_age_s"] is None
    defaults = tuple(b.primary.defaults[f] for f in ("f1", "f2", "f3"))
    assert doc["outputs"][0]["data"] == [expected_primary(b, (0.3, -0.7), defaults)]


async def test_an_entity_the_store_does_not_know_means_default_features(
    backends: Backends,
) -> None:
    b = backends
    gateway = await b.gateway(replicas=list(b.replicas), store=b.store)
    status, doc = await b.infer(gateway, entity=123456)
    assert status == 200
    assert doc["parameters"]["degradation"] == "default_features"


async def test_after_a_fetch_a_lost_store_means_cached_features(
    backends: Backends, tmp_path: Path
) -> None:
    b = backends
    await b.group.start(demo_spec("store-2", "store", "--db", str(tmp_path / "f.db")))
    store = url_of(b.group, "store-2")
    await push(b.http, store, ENTITY, time.time())
    gateway = await b.gateway(replicas=list(b.replicas), store=store)
    status, doc = await b.infer(gateway)
    assert (status, doc["parameters"]["degradation"]) == (200, "none")
    await b.group.stop("store-2")
    await asyncio.sleep(0.3)
    status, doc = await b.infer(gateway)
    assert status == 200
    assert doc["model_name"] == "primary"
    assert doc["parameters"]["degradation"] == "cached_features"
    assert doc["parameters"]["feature_age_s"] >= 0.3
    assert doc["outputs"][0]["data"] == [expected_primary(b, (0.3, -0.7), FEATURES)]
    status, doc = await b.infer(gateway, entity=7)  # never fetched: nothing cached
    assert doc["parameters"]["degradation"] == "default_features"


async def test_both_replicas_down_means_the_fallback_model_answers(backends: Backends) -> None:
    b = backends
    gateway = await b.gateway(replicas=[dead_url(), dead_url()], store=b.store)
    for x in [(0.3, -0.7), (-1.2, 0.4)]:
        status, doc = await b.infer(gateway, x=x)
        assert status == 200
        assert doc["model_name"] == "fallback"
        assert doc["parameters"]["degradation"] == "fallback_model"
        assert doc["parameters"]["replica"] is None
        assert doc["outputs"][0]["data"] == [b.fallback.predict(list(x))[0]]


async def test_one_replica_down_means_the_other_answers_every_request(
    backends: Backends,
) -> None:
    b = backends
    gateway = await b.gateway(replicas=[dead_url(), b.replicas[1]], store=b.store)
    for _ in range(4):
        status, doc = await b.infer(gateway)
        assert status == 200
        assert doc["model_name"] == "primary"
        assert doc["parameters"]["degradation"] == "none"
        assert doc["parameters"]["replica"] == "replica-b"


async def test_a_hanging_replica_costs_one_model_timeout_then_the_other_answers(
    backends: Backends,
) -> None:
    b = backends
    async with recorder(hang=True) as hanging:
        gateway = await b.gateway(
            replicas=[hanging.url, b.replicas[0]],
            store=b.store,
            extra=("--model-timeout", "0.2", "--max-feature-age", "3600"),
        )
        for _ in range(2):
            started = time.monotonic()
            status, doc = await b.infer(gateway)
            assert time.monotonic() - started < 1.5
            assert status == 200
            assert doc["parameters"] == {
                "degradation": "none",
                "feature_age_s": doc["parameters"]["feature_age_s"],
                "replica": "replica-a",
            }


async def test_a_naive_gateway_fails_with_502_where_the_resilient_one_degrades(
    backends: Backends,
) -> None:
    b = backends
    one_dead = await b.gateway(replicas=[dead_url(), b.replicas[0]], store=b.store, variant="naive")
    statuses = []
    for _ in range(4):
        status, doc = await b.infer(one_dead)
        statuses.append(status)
        if status == 502:
            assert "replica" in doc["error"]
        else:
            assert doc["parameters"]["degradation"] == "none"
    assert statuses.count(502) == 2 and statuses.count(200) == 2
    status, doc = await b.infer(one_dead, entity=123456)  # the store has no features for it
    assert status == 502
    assert "feature store" in doc["error"]

    no_store = await b.gateway(replicas=list(b.replicas), store=dead_url(), variant="naive")
    status, doc = await b.infer(no_store)
    assert status == 502
    assert "feature store" in doc["error"]


async def test_the_arm_header_is_copied_onto_every_downstream_call(backends: Backends) -> None:
    b = backends
    async with recorder() as fake:
        gateway = await b.gateway(replicas=[fake.url, fake.url], store=fake.url)
        status, doc = await b.infer(gateway, headers={ARM: "experiment"})
        assert status == 200, doc
        assert doc["parameters"]["replica"] == "recorder"
        assert sorted(fake.arms) == [
            ("/get-online-features", "experiment"),
            ("/v2/models/primary/infer", "experiment"),
        ]
        fake.arms.clear()
        await b.infer(gateway)
        assert sorted(fake.arms) == [
            ("/get-online-features", None),
            ("/v2/models/primary/infer", None),
        ]


async def test_malformed_requests_are_400_unknown_models_404_and_health_answers(
    backends: Backends,
) -> None:
    b = backends
    gateway = await b.gateway(replicas=list(b.replicas), store=b.store)
    for path, expected in [
        ("/v2/health/live", {"live": True}),
        ("/v2/health/ready", {"ready": True}),
        ("/v2/models/churn/ready", {"name": "churn", "ready": True}),
    ]:
        async with b.http.get(gateway + path) as r:
            assert (r.status, await r.json()) == (200, expected)
    async with b.http.get(f"{gateway}/v2/models/churn") as r:
        assert (await r.json())["inputs"][0]["shape"] == [1, 3]
    status, doc = await b.infer(gateway, entity=1.5)
    assert status == 400 and "entity_id" in doc["error"]
    for body in (
        b"nope",
        b"{}",
        b'{"inputs": [{"shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}',
    ):
        async with b.http.post(f"{gateway}/v2/models/churn/infer", data=body) as r:
            assert r.status == 400
            assert "error" in await r.json()
    async with b.http.post(f"{gateway}/v2/models/primary/infer", json={}) as r:
        assert r.status == 404
    name = b.started[-1]
    service = b.group.service(name)
    assert await b.group.stop(name) == 0
    assert not any("Traceback" in line for line in service.log_tail())


# ------------------------------------------------------------------ a recording stand-in


@dataclass
class Recorder:
    url: str
    arms: list[tuple[str, str | None]]


class recorder:  # noqa: N801 - used like a function: ``async with recorder() as fake``
    """A loopback server that answers as a Feast store and a primary replica, recording the
    arm header of every call; with ``hang`` it never answers inference."""

    def __init__(self, *, hang: bool = False) -> None:
        self._hang = hang
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Recorder:
        arms: list[tuple[str, str | None]] = []
        hang = self._hang

        async def features(request: web.Request) -> web.Response:
            arms.append((request.path, request.headers.get(ARM)))
            stamp = format_timestamp(time.time())
            results = [{"values": [ENTITY], "statuses": ["PRESENT"], "event_timestamps": [stamp]}]
            results += [
                {"values": [v], "statuses": ["PRESENT"], "event_timestamps": [stamp]}
                for v in FEATURES
            ]
            names = ["entity_id", "f1", "f2", "f3"]
            return web.json_response({"metadata": {"feature_names": names}, "results": results})

        async def infer(request: web.Request) -> web.Response:
            arms.append((request.path, request.headers.get(ARM)))
            if hang:
                await asyncio.sleep(30)
            label = {"name": "label", "shape": [1, 1], "datatype": "INT64", "data": [1]}
            return web.json_response({"outputs": [label], "parameters": {"replica": "recorder"}})

        app = web.Application()
        app.router.add_post("/get-online-features", features)
        app.router.add_post("/v2/models/primary/infer", infer)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return Recorder(f"http://127.0.0.1:{self._runner.addresses[0][1]}", arms)

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


async def test_stale_features_are_served_marked_by_the_resilient_gateway_and_block_the_naive(
    backends: Backends,
) -> None:
    b = backends
    stale, entity = ("--max-feature-age", "1"), 4242  # an entity no other test pushes
    await push(b.http, b.store, entity, time.time() - 10)
    resilient = await b.gateway(replicas=list(b.replicas), store=b.store, extra=stale)
    status, doc = await b.infer(resilient, entity=entity)
    assert status == 200
    assert doc["parameters"]["degradation"] == "stale_features"
    assert doc["parameters"]["feature_age_s"] >= 10

    naive = await b.gateway(replicas=list(b.replicas), store=b.store, variant="naive", extra=stale)
    t0 = time.monotonic()
    waiting = asyncio.create_task(b.infer(naive, entity=entity))
    await asyncio.sleep(0.6)
    assert not waiting.done()  # it blocks on the stale features...
    await push(b.http, b.store, entity, time.time())
    status, doc = await waiting  # ...until fresh ones arrive
    assert status == 200
    assert doc["parameters"]["degradation"] == "none"
    assert time.monotonic() - t0 >= 0.6
