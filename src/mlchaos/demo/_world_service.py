"""The label service (``world``): the simulation's ground truth, asked after each answer.

``POST /labels`` takes ``{"requests": [{"id", "row", "key", "time"}, ...]}`` — what mlchaos's
traffic sends for delayed labels: the dataset row replayed, its key (the entity id as text, or
null) and the wall-clock send time — and answers ``{"labels": [1, 0, null, ...]}`` in the same
order, null when the row is unknown, the key is not that row's entity or the time is missing.
``GET /health`` answers ``{"ok": true}``. A malformed body is answered 400 ``{"error": ...}``.
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from mlchaos.demo._serve import serve
from mlchaos.demo._world import LabelOracle, LabelRequest
from mlchaos.testing._oip import HTTPError, json_errors, read_json_object

__all__ = ["serve_world", "world_app"]

_ORACLE = web.AppKey("oracle", LabelOracle)


def world_app(seed: int) -> web.Application:
    """The label service's aiohttp application for the world of ``seed``."""
    app = web.Application(middlewares=[json_errors()], client_max_size=64 * 1024 * 1024)
    app[_ORACLE] = LabelOracle(seed)
    app.router.add_post("/labels", _labels)
    app.router.add_get("/health", _health)
    return app


async def serve_world(seed: int, port: int) -> None:
    """Serve the label service until SIGTERM or SIGINT."""
    await serve(world_app(seed), "world", port)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _labels(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    items = body.get("requests")
    if not isinstance(items, list):
        raise HTTPError("the body must be {'requests': [...]}")
    parsed = [_request(item, i) for i, item in enumerate(items)]
    return web.json_response({"labels": request.app[_ORACLE].labels(parsed)})


def _request(item: Any, index: int) -> LabelRequest:
    """One label question; a malformed entry is an error, an unknown row merely unlabelled."""
    if not isinstance(item, dict):
        raise HTTPError(f"requests[{index}] must be an object with row, key and time")
    row, key, t = item.get("row"), item.get("key"), item.get("time")
    return LabelRequest(
        row=row if isinstance(row, int) and not isinstance(row, bool) else None,
        key=key if isinstance(key, str) else None if key is None else str(key),
        time=float(t)
        if isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t)
        else None,
    )
