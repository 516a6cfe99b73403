"""The gateway (``gateway``): the service users call, model ``churn`` over Open Inference v2.

A request's one FP32 input of shape ``[1, 3]`` is ``[entity_id, x1, x2]``. The gateway fetches
the entity's features ``f1..f3`` from the feature store (Feast's ``POST
/get-online-features``), asks a primary replica (``POST {replica}/v2/models/primary/infer``
with ``[x1, x2, f1, f2, f3]``) and answers ``{"model_name": "primary"|"fallback",
"model_version": "1", "id", "outputs": [label], "parameters": {"degradation", "feature_age_s",
"replica"}}``. ``degradation`` is ``"none"`` or the comma-joined subset of ``fallback_model,
cached_features,default_features,stale_features`` that this answer needed. The incoming
``x-mlchaos-arm`` header is copied onto every downstream call, so a fault proxy on a link can
fault only the experiment arm. All downstream calls share one keep-alive ``ClientSession``;
a ``redis://`` store is read from Redis instead (one hash per entity, a pooled client whose
connects and commands have the store timeout).

Two variants, the point of the demo:

* ``resilient`` — the store call has ``store_timeout``; when it fails (error, non-200, timeout,
  entity not found) the entity's features from an earlier successful fetch are used if that
  fetch is at most ``cache_ttl`` old (``cached_features``), else the training means from the
  model file (``default_features``). Replicas are used round-robin, each attempt with
  ``model_timeout``; a failed attempt (connection error or reset, timeout, non-200, a body
  without a label) is retried once on the next replica, and if that fails too the fallback
  model (``[x1, x2]`` only) answers in-process (``fallback_model``). Features older than
  ``max_feature_age`` are served as they are, marked ``stale_features``.
* ``naive`` — one attempt of everything with a generous 10 s timeout, no retry, cache,
  defaults or fallback: any downstream failure is answered 502 ``{"error": "..."}``; features
  older than ``max_feature_age`` make it block, fetching again until fresh ones arrive.

Malformed client requests are answered 400 and unknown models 404, as ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from redis.asyncio import Redis

from mlchaos.arms import ARM_HEADER
from mlchaos.demo._logistic import LinearModel
from mlchaos.demo._redis import fetch_redis_features, is_redis, redis_client
from mlchaos.demo._serve import serve
from mlchaos.demo._store import FEATURE_VIEW, STORE_FEATURES, parse_timestamp
from mlchaos.testing._oip import (
    HTTPError,
    add_v2_routes,
    check_model,
    json_errors,
    label_output,
    model_metadata,
    read_json_object,
    single_row,
)

__all__ = [
    "CHURN",
    "Answer",
    "DownstreamError",
    "Gateway",
    "GatewayConfig",
    "Variant",
    "gateway_app",
    "serve_gateway",
]

CHURN = "churn"
Variant = Literal["resilient", "naive"]
NAIVE_TIMEOUT_S = 10.0
_MAX_ENTITY = 2**53
_CONNECTIONS = 512
_STALE_RETRY_S = 0.1


class DownstreamError(Exception):
    """A downstream call failed; the message says which and why."""


@dataclass(frozen=True)
class GatewayConfig:
    """The gateway's links and its resilience settings (seconds)."""

    variant: Variant
    replicas: tuple[str, ...]
    store: str
    model_timeout: float = 0.25
    store_timeout: float = 0.1
    cache_ttl: float = 60.0
    max_feature_age: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "replicas", tuple(u.rstrip("/") for u in self.replicas))
        object.__setattr__(self, "store", self.store.rstrip("/"))
        if not self.replicas:
            raise ValueError("the gateway needs at least one replica")


@dataclass(frozen=True)
class _Features:
    values: tuple[float, ...]  # f1..f3
    event_time: float  # unix seconds


@dataclass(frozen=True)
class _Cached:
    features: _Features
    fetched_at: float  # monotonic


@dataclass(frozen=True)
class Answer:
    """What the gateway answers one request with."""

    model_name: str
    label: int
    degradation: tuple[str, ...]
    feature_age_s: float | None
    replica: str | None


@dataclass
class Gateway:
    """One gateway's state: its models, the feature cache and the round-robin position."""

    config: GatewayConfig
    primary: LinearModel
    fallback: LinearModel
    session: aiohttp.ClientSession
    redis: Redis | None = None  # the store, when it is a redis:// URL
    _cache: dict[int, _Cached] = field(default_factory=dict)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def naive(self) -> bool:
        return self.config.variant == "naive"

    async def answer(self, entity: int, x: Sequence[float], headers: Mapping[str, str]) -> Answer:
        """Features, then a replica (or the fallback): the answer for one request.

        Raises :class:`DownstreamError` only in the naive variant.
        """
        degradation: list[str] = []
        features = await self._features(entity, headers)
        if isinstance(features, _Features):
            features = await self._fresh_enough(features, entity, headers, degradation)
        if features is None:  # resilient only: no fresh or cached features
            degradation.append("default_features")
            values = tuple(self.primary.defaults.get(f, 0.0) for f in STORE_FEATURES)
            age: float | None = None
        else:
            if isinstance(features, _Cached):
                degradation.append("cached_features")
                features = features.features
            values = features.values
            age = round(max(0.0, time.time() - features.event_time), 3)
        named = dict(zip(("x1", "x2"), x, strict=True)) | dict(
            zip(STORE_FEATURES, values, strict=True)
        )
        row = [named[f] for f in self.primary.features]
        answered = await self._primary(row, headers)
        if answered is None:
            label, _ = self.fallback.predict([named[f] for f in self.fallback.features])
            return Answer(self.fallback.name, label, ("fallback_model", *degradation), age, None)
        label, replica = answered
        return Answer(self.primary.name, label, tuple(degradation), age, replica)

    async def _fresh_enough(
        self,
        features: _Features,
        entity: int,
        headers: Mapping[str, str],
        degradation: list[str],
    ) -> _Features:
        """Features older than ``max_feature_age``: resilient serves them, marked
        ``stale_features``; naive blocks, fetching again until fresh ones arrive (up to its
        10 s timeout, then :class:`DownstreamError`)."""
        limit = self.config.max_feature_age
        if not self.naive:
            if time.time() - features.event_time > limit:
                degradation.append("stale_features")
            return features
        deadline = time.monotonic() + NAIVE_TIMEOUT_S
        while (age := time.time() - features.event_time) > limit:
            if time.monotonic() >= deadline:
                raise DownstreamError(f"feature store: features are {age:.1f}s old")
            await asyncio.sleep(_STALE_RETRY_S)
            features = await self._fetch(entity, headers, NAIVE_TIMEOUT_S)
        return features

    async def _fetch(self, entity: int, headers: Mapping[str, str], limit: float) -> _Features:
        """The entity's features from the store (HTTP Feast API, or Redis); DownstreamError."""
        if self.redis is None:
            return await _fetch_features(self.session, self.config.store, entity, headers, limit)
        from redis.exceptions import RedisError  # noqa: PLC0415

        try:
            async with asyncio.timeout(limit):
                row = await fetch_redis_features(self.redis, entity, STORE_FEATURES)
        except TimeoutError:
            raise DownstreamError(f"feature store (redis): no answer within {limit}s") from None
        except (RedisError, OSError) as exc:
            raise DownstreamError(f"feature store (redis): {exc or type(exc).__name__}") from None
        if row is None:
            raise DownstreamError(f"feature store (redis): entity {entity} has no features")
        return _Features(*row)

    async def _features(
        self, entity: int, headers: Mapping[str, str]
    ) -> _Features | _Cached | None:
        """Fresh features; in the resilient variant, cached ones or None (use defaults)."""
        timeout = NAIVE_TIMEOUT_S if self.naive else self.config.store_timeout
        try:
            features = await self._fetch(entity, headers, timeout)
        except DownstreamError:
            if self.naive:
                raise
            cached = self._cache.get(entity)
            if cached is not None and time.monotonic() - cached.fetched_at <= self.config.cache_ttl:
                return cached
            return None
        if not self.naive:
            self._cache[entity] = _Cached(features, time.monotonic())
        return features

    async def _primary(
        self, row: list[float], headers: Mapping[str, str]
    ) -> tuple[int, str] | None:
        """``(label, replica)`` from a replica; None when every attempt failed (resilient)."""
        replicas = self.config.replicas
        start = next(self._turn)
        if self.naive:
            return await _infer(
                self.session, replicas[start % len(replicas)], row, headers, NAIVE_TIMEOUT_S
            )
        for attempt in range(2):
            url = replicas[(start + attempt) % len(replicas)]
            try:
                return await _infer(self.session, url, row, headers, self.config.model_timeout)
            except DownstreamError:
                continue
        return None


async def _post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: object,
    headers: Mapping[str, str],
    limit_s: float,
    what: str,
) -> Any:
    """POST ``body`` and return the decoded JSON answer; :class:`DownstreamError` otherwise."""
    try:
        async with (
            asyncio.timeout(limit_s),
            session.post(url, json=body, headers=headers) as response,
        ):
            raw = await response.read()
    except TimeoutError:
        raise DownstreamError(f"{what}: no answer within {limit_s}s") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise DownstreamError(f"{what}: {str(exc) or type(exc).__name__}") from None
    if response.status != 200:
        raise DownstreamError(f"{what}: HTTP {response.status}")
    try:
        return json.loads(raw)
    except ValueError:
        raise DownstreamError(f"{what}: the answer is not JSON") from None


async def _fetch_features(
    session: aiohttp.ClientSession,
    store: str,
    entity: int,
    headers: Mapping[str, str],
    limit_s: float,
) -> _Features:
    """The entity's present features and their event time from the feature store."""
    body = {
        "features": [f"{FEATURE_VIEW}:{f}" for f in STORE_FEATURES],
        "entities": {"entity_id": [entity]},
        "full_feature_names": False,
    }
    what = "feature store"
    doc = await _post_json(session, f"{store}/get-online-features", body, headers, limit_s, what)
    try:
        names = doc["metadata"]["feature_names"]
        columns = dict(zip(names, doc["results"], strict=True))
        values: list[float] = []
        times: list[float] = []
        for name in STORE_FEATURES:
            column = columns[name]
            value, status = column["values"][0], column["statuses"][0]
            if status != "PRESENT" or not _finite(value):
                raise DownstreamError(f"{what}: entity {entity} has no feature {name!r}")
            values.append(float(value))
            times.append(parse_timestamp(column["event_timestamps"][0]))
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise DownstreamError(
            f"{what}: the answer is not a Feast online-features response"
        ) from None
    return _Features(tuple(values), min(times))


async def _infer(
    session: aiohttp.ClientSession,
    replica: str,
    row: list[float],
    headers: Mapping[str, str],
    limit_s: float,
) -> tuple[int, str]:
    """``(label, replica name)`` from one primary replica."""
    body = {
        "inputs": [{"name": "features", "shape": [1, len(row)], "datatype": "FP32", "data": row}]
    }
    what = f"replica {replica}"
    doc = await _post_json(
        session, f"{replica}/v2/models/primary/infer", body, headers, limit_s, what
    )
    try:
        outputs = {o["name"]: o for o in doc["outputs"]}
        label = outputs["label"]["data"][0]
        params = doc.get("parameters") or {}
    except (KeyError, IndexError, TypeError, AttributeError):
        raise DownstreamError(f"{what}: the answer has no label output") from None
    if label not in (0, 1) or isinstance(label, bool | float):
        raise DownstreamError(f"{what}: the label {label!r} is not 0 or 1")
    name = params.get("replica") if isinstance(params, dict) else None
    return int(label), name if isinstance(name, str) else replica


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# ---------------------------------------------------------------------------- HTTP application

_GATEWAY = web.AppKey("gateway", Gateway)


def gateway_app(config: GatewayConfig, model_dir: Path) -> web.Application:
    """The gateway's aiohttp application; model files are read now (ModelFileError if bad)."""
    primary = LinearModel.load(model_dir / "primary.json")
    fallback = LinearModel.load(model_dir / "fallback.json")
    app = web.Application(middlewares=[json_errors()])

    async def session(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=_CONNECTIONS, limit_per_host=0)
        async with aiohttp.ClientSession(connector=connector) as client:
            store = None
            if is_redis(config.store):
                naive = config.variant == "naive"
                store = redis_client(
                    config.store, NAIVE_TIMEOUT_S if naive else config.store_timeout
                )
            app[_GATEWAY] = Gateway(config, primary, fallback, client, store)
            try:
                yield
            finally:
                if store is not None:
                    await store.aclose()

    app.cleanup_ctx.append(session)
    add_v2_routes(
        app,
        server=f"mlchaos-demo-gateway/{config.variant}",
        model=CHURN,
        metadata=_metadata,
        infer=_infer_handler,
    )
    return app


async def serve_gateway(config: GatewayConfig, model_dir: Path, port: int) -> None:
    """Serve the gateway until SIGTERM or SIGINT."""
    await serve(gateway_app(config, model_dir), "gateway", port)


async def _metadata(request: web.Request) -> web.Response:
    check_model(request.match_info, CHURN)
    doc = model_metadata(CHURN, "input-0", ("entity_id", "x1", "x2"), [("label", "INT64")])
    doc["parameters"]["variant"] = request.app[_GATEWAY].config.variant
    return web.json_response(doc)


async def _infer_handler(request: web.Request) -> web.Response:
    check_model(request.match_info, CHURN)
    request_id, (entity_value, x1, x2) = single_row(await read_json_object(request), 3)
    if entity_value != math.floor(entity_value) or abs(entity_value) > _MAX_ENTITY:
        raise HTTPError(f"entity_id must be an integer, got {entity_value!r}")
    arm = request.headers.get(ARM_HEADER)
    headers = {ARM_HEADER: arm} if arm is not None else {}
    try:
        answer = await request.app[_GATEWAY].answer(int(entity_value), (x1, x2), headers)
    except DownstreamError as exc:
        return web.json_response({"error": str(exc)}, status=502)
    doc: dict[str, Any] = {"model_name": answer.model_name, "model_version": "1"}
    if request_id is not None:
        doc["id"] = request_id
    doc["outputs"] = [label_output(answer.label)]
    doc["parameters"] = {
        "degradation": ",".join(answer.degradation) or "none",
        "feature_age_s": answer.feature_age_s,
        "replica": answer.replica,
    }
    return web.json_response(doc)
