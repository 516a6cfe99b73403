"""The feature pipeline (``pipeline``): a simulated event stream turned into online features.

Every ``interval`` seconds (0.25 by default) it emits one event per entity — a noisy
observation of the entity's current hidden state from the world model — and recomputes every
entity's features ``f1..f3`` as the mean of its events of the last second
(:data:`~mlchaos.demo._world.FEATURE_WINDOW_S`), exactly as the models were trained. It pushes
them to the feature store through Feast's push API (``POST {store}/push``; with a ``redis://``
store, as one hash per entity, see :mod:`mlchaos.demo._redis`) with the latest
event's timestamp. ``GET /health`` answers ``{"ok": true, "writes": n, "failed_pushes": n,
"last_write": unix_time|null}``: pushes that succeeded and failed so far, and when the latest
success was.

When the store cannot be reached the pipeline says so on stderr once (and once more when it
is back), keeps simulating and keeps trying at every tick; it never crashes on it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import numpy as np
from aiohttp import web

from mlchaos.demo._redis import is_redis, redis_client, write_redis_features
from mlchaos.demo._serve import serve
from mlchaos.demo._store import ENTITY_KEY, FEATURE_VIEW, STORE_FEATURES, format_timestamp
from mlchaos.demo._world import FEATURE_WINDOW_S, N_ENTITIES, FloatArray, World
from mlchaos.testing._oip import json_errors

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["FeaturePipeline", "pipeline_app", "serve_pipeline"]

_STREAM_EVENTS = 20
_PUSH_TIMEOUT_S = 2.0


@dataclass
class FeaturePipeline:
    """The simulated stream of one world: its recent events and what it pushed so far."""

    world: World
    interval: float
    rng: np.random.Generator
    writes: int = 0
    failed_pushes: int = 0
    last_write: float | None = None
    failing: bool = False
    _events: collections.deque[tuple[float, FloatArray]] = field(init=False)

    def __post_init__(self) -> None:
        window = max(1, round(FEATURE_WINDOW_S / self.interval))
        self._events = collections.deque(maxlen=window)

    @classmethod
    def from_seed(cls, seed: int, interval: float) -> FeaturePipeline:
        """The pipeline of the world of ``seed``; its observation noise is seeded too."""
        return cls(World.from_seed(seed), interval, np.random.default_rng([seed, _STREAM_EVENTS]))

    def tick(self, now: float) -> dict[str, object]:
        """Emit one event per entity at ``now`` and return the push body of fresh features."""
        entities = np.arange(N_ENTITIES, dtype=np.int64)
        self._events.append((now, self.world.observe(entities, now, self.rng)))
        features = np.mean([obs for _, obs in self._events], axis=0)
        stamp = format_timestamp(now)
        df: dict[str, list[Any]] = {ENTITY_KEY: entities.tolist()}
        for i, name in enumerate(STORE_FEATURES):
            df[name] = features[:, i].tolist()
        df["event_timestamp"] = [stamp] * N_ENTITIES
        return {"push_source_name": FEATURE_VIEW, "df": df, "to": "online"}

    async def run(self, session: aiohttp.ClientSession, store: str) -> None:
        """Tick every ``interval`` on the monotonic clock and push, until cancelled."""
        if is_redis(store):
            client = redis_client(store, _PUSH_TIMEOUT_S)
            try:
                await self._loop(lambda body: _write_redis(client, body), store)
            finally:
                await client.aclose()
        else:
            url = f"{store.rstrip('/')}/push"
            await self._loop(lambda body: _post(session, url, body), url)

    async def _loop(
        self, push: Callable[[dict[str, object]], Awaitable[str | None]], where: str
    ) -> None:
        next_tick = time.monotonic()
        while True:
            body = self.tick(time.time())
            await self._push(push, where, body)
            next_tick += self.interval
            now = time.monotonic()
            next_tick = max(next_tick, now)  # fell behind (a slow store): skip missed ticks
            await asyncio.sleep(next_tick - now)

    async def _push(
        self,
        push: Callable[[dict[str, object]], Awaitable[str | None]],
        url: str,
        body: dict[str, object],
    ) -> None:
        problem = await push(body)
        if problem is not None:
            self.failed_pushes += 1
            if not self.failing:
                _log(f"cannot push features to {url} ({problem}); retrying every tick")
                self.failing = True
            return
        if self.failing:
            _log(f"pushing features to {url} again")
            self.failing = False
        self.writes += 1
        self.last_write = time.time()


async def _write_redis(client: Redis, body: dict[str, object]) -> str | None:
    """Write to Redis; None when it worked, else what went wrong."""
    from redis.exceptions import RedisError  # noqa: PLC0415

    try:
        async with asyncio.timeout(_PUSH_TIMEOUT_S):
            await write_redis_features(client, body)
    except TimeoutError:
        return f"no answer within {_PUSH_TIMEOUT_S}s"
    except (RedisError, OSError) as exc:
        return str(exc) or type(exc).__name__
    return None


async def _post(session: aiohttp.ClientSession, url: str, body: object) -> str | None:
    """POST ``body``; None when the store answered 200, else what went wrong."""
    try:
        async with asyncio.timeout(_PUSH_TIMEOUT_S), session.post(url, json=body) as response:
            text = await response.text()
    except TimeoutError:
        return f"no answer within {_PUSH_TIMEOUT_S}s"
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    if response.status != 200:
        return f"HTTP {response.status}: {text[:200]}"
    return None


_PIPELINE = web.AppKey("pipeline", FeaturePipeline)


def pipeline_app(store: str, seed: int, interval: float) -> web.Application:
    """The pipeline's aiohttp application: ``GET /health``, with the stream as a background task."""
    app = web.Application(middlewares=[json_errors()])
    pipeline = FeaturePipeline.from_seed(seed, interval)
    app[_PIPELINE] = pipeline

    async def stream(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            task = asyncio.create_task(pipeline.run(session, store), name="feature pipeline")
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(stream)
    app.router.add_get("/health", _health)
    return app


async def serve_pipeline(store: str, seed: int, interval: float, port: int) -> None:
    """Run the pipeline and serve its health until SIGTERM or SIGINT."""
    await serve(pipeline_app(store, seed, interval), "pipeline", port)


async def _health(request: web.Request) -> web.Response:
    pipeline = request.app[_PIPELINE]
    return web.json_response(
        {
            "ok": True,
            "writes": pipeline.writes,
            "failed_pushes": pipeline.failed_pushes,
            "last_write": pipeline.last_write,
        }
    )


def _log(line: str) -> None:
    sys.stderr.write(f"pipeline: {line}\n")
    sys.stderr.flush()
