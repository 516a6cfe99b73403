"""The client simulator (``clients``): the service's users, for live experiments.

It calls the gateway through the edge proxy at a steady rate, each call for a random row of
the demo dataset (an entity and its request features) as an Open Inference Protocol v2
request, whether or not earlier calls have answered (at most ``max_in_flight`` open; beyond
that a call is skipped and counted). It does not know about mlchaos: the edge proxy decides
which calls are in a cohort. ``GET /health`` answers its counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from mlchaos.demo._serve import ServeError, serve
from mlchaos.testing._oip import json_errors

__all__ = ["Clients", "clients_app", "serve_clients"]

_MAX_IN_FLIGHT = 256


@dataclass
class Clients:
    """The counters of one simulator."""

    sent: int = 0
    answered: int = 0
    errors: int = 0
    skipped: int = 0


def _bodies(dataset: Path) -> list[bytes]:
    with dataset.open(encoding="utf-8", newline="") as f:
        rows = [(float(r["entity_id"]), float(r["x1"]), float(r["x2"])) for r in csv.DictReader(f)]
    if not rows:
        raise ValueError(f"{dataset} has no rows")
    return [
        json.dumps(
            {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32", "data": row}]}
        ).encode()
        for row in rows
    ]


def clients_app(target: str, dataset: Path, rate: float, seed: int) -> web.Application:
    """An app whose background task calls ``target`` (the gateway's base URL) ``rate`` times a
    second for as long as it runs."""
    import aiohttp  # noqa: PLC0415

    counters = Clients()
    bodies = _bodies(dataset)
    url = target.rstrip("/") + "/v2/models/churn/infer"
    rng = random.Random(seed)
    headers = {"content-type": "application/json"}

    async def call(session: aiohttp.ClientSession, body: bytes) -> None:
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status < 500:
                    counters.answered += 1
                else:
                    counters.errors += 1
        except (aiohttp.ClientError, TimeoutError, OSError):
            counters.errors += 1

    async def send_forever() -> None:
        timeout = aiohttp.ClientTimeout(total=5.0)
        connector = aiohttp.TCPConnector(limit=_MAX_IN_FLIGHT)
        async with (
            aiohttp.ClientSession(timeout=timeout, connector=connector) as session,
            asyncio.TaskGroup() as tasks,
        ):
            in_flight: set[asyncio.Task[None]] = set()
            t0 = time.monotonic()
            i = 0
            while True:
                due = t0 + i / rate
                if (delay := due - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                i += 1
                if len(in_flight) >= _MAX_IN_FLIGHT:
                    counters.skipped += 1
                    continue
                counters.sent += 1
                task = tasks.create_task(call(session, rng.choice(bodies)))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)

    async def run_in_background(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(send_forever(), name="clients")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def health(request: web.Request) -> web.Response:
        body: dict[str, Any] = {"ok": True, "rate": rate, **counters.__dict__}
        return web.json_response(body)

    app = web.Application(middlewares=[json_errors()])
    app.cleanup_ctx.append(run_in_background)
    app.router.add_get("/health", health)
    return app


async def serve_clients(target: str, dataset: Path, rate: float, seed: int, port: int) -> None:
    """Run the simulator until SIGTERM or SIGINT."""
    try:
        app = clients_app(target, dataset, rate, seed)
    except (OSError, ValueError, KeyError) as exc:
        raise ServeError(f"cannot read the dataset {dataset}: {exc}") from None
    await serve(app, "clients", port)
