"""The control API: JSON over HTTP to add, renew, list and remove leased faults.

=========================  ===================================================================
``GET /health``            ``{"status": "ok", "protocol", "listen", "upstream", "faults"}``
``GET /faults``            ``{"faults": [ActiveFault, ...]}``
``POST /faults``           ``{"rule": {...}, "lease": "5s"?, "id": "..."?}`` → 201
                           ``{"id", "lease", "expires_in"}`` (an active id is replaced)
``POST /faults/{id}/renew`` ``{"lease": "5s"?}`` → ``{"id", "lease", "expires_in"}``
``DELETE /faults/{id}``    ``{"removed": id}``
``DELETE /faults``         ``{"removed": count}``
``GET /stats``             :class:`ProxyStats`
``PUT /cohorts``           :class:`~mlchaos.proxy._live.Cohorts` → ``{"lease", "expires_in"}``
                           (HTTP proxies only: live traffic split by key, under a lease)
``POST /cohorts/renew``    ``{"lease": "5s"?}`` → ``{"lease", "expires_in"}``
``GET /cohorts``           ``{"cohorts": {...} | null, "lease", "expires_in", "logged"}``
``DELETE /cohorts``        ``{"removed": bool}``: back to the configured split
``GET /metrics``           Prometheus text format (:mod:`mlchaos.proxy._metrics`)
``GET /observations``      ``?after=N&limit=M``: the edge's logged observations from sequence
                           number N: ``{"fields", "rows", "next", "dropped", "now"}``
=========================  ===================================================================

Every endpoint requires ``Authorization: Bearer <token>`` (compared in constant time); errors
come back as ``{"error": "..."}`` with 400 (bad JSON or rule, listing each problem), 401, 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from mlchaos.control import BadRequestError, guarded_app, parse_body, read_body
from mlchaos.proxy._faults import ActiveFault, FaultTable, UnknownFaultError
from mlchaos.proxy._live import Cohorts, LiveState
from mlchaos.proxy._rules import Rule
from mlchaos.proxy._stats import ProxyStats
from mlchaos.units import Duration

__all__ = ["control_app"]


class _AddFault(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: Rule
    lease: Duration | None = None
    id: str | None = None


class _Renew(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    lease: Duration | None = None


def control_app(
    faults: FaultTable,
    token: str,
    stats: Callable[[], ProxyStats],
    info: Callable[[], dict[str, Any]],
    live: LiveState | None,
    metrics: Callable[[], tuple[bytes, str]],
) -> web.Application:
    """The aiohttp application of one proxy's control API (``live`` is None for TCP)."""

    def live_state() -> LiveState:
        if live is None:
            raise BadRequestError(
                "a TCP proxy cannot read a key or an arm header: live cohorts need an HTTP proxy"
            )
        return live

    async def set_cohorts(request: web.Request) -> web.Response:
        body = parse_body(await read_body(request), Cohorts, "cohorts")
        state = live_state()
        expires = state.set(body)
        return _json({"lease": str(state.lease), "expires_in": expires})

    async def renew_cohorts(request: web.Request) -> web.Response:
        body = parse_body(await read_body(request, allow_empty=True), _Renew, "renewal")
        state = live_state()
        expires = state.renew(body.lease)
        return _json({"lease": str(state.lease), "expires_in": expires})

    async def get_cohorts(request: web.Request) -> web.Response:
        return _json(live_state().describe())

    async def clear_cohorts(request: web.Request) -> web.Response:
        return _json({"removed": live_state().clear()})

    async def get_metrics(request: web.Request) -> web.Response:
        body, content_type = metrics()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def observations(request: web.Request) -> web.Response:
        log = live_state().log
        if log is None:
            raise LookupError("this proxy logs no observations: set cohorts with edge: true")
        after = _int_param(request, "after", 0)
        limit = min(_int_param(request, "limit", 10_000), 50_000)
        return _json(log.read(after, limit))

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **info(), "faults": len(faults)})

    async def list_faults(request: web.Request) -> web.Response:
        return _json({"faults": [f.model_dump(mode="json") for f in faults.list()]})

    async def add_fault(request: web.Request) -> web.Response:
        body = parse_body(await read_body(request), _AddFault, "fault")
        fault_id = faults.add(body.rule, body.lease, body.id)
        return _json(_lease_answer(faults.get(fault_id)), status=201)

    async def renew(request: web.Request) -> web.Response:
        raw = await read_body(request, allow_empty=True)
        body = parse_body(raw, _Renew, "renewal")
        return _json(_lease_answer(faults.renew(request.match_info["id"], body.lease)))

    async def remove(request: web.Request) -> web.Response:
        last = faults.remove(request.match_info["id"])
        return _json({"removed": last.id, "applied": last.applied, "hits": last.hits})

    async def clear(request: web.Request) -> web.Response:
        return _json({"removed": faults.clear()})

    async def get_stats(request: web.Request) -> web.Response:
        return _json(stats().model_dump(mode="json"))

    app = guarded_app(token, (UnknownFaultError, LookupError))
    app.router.add_get("/health", health)
    app.router.add_get("/faults", list_faults)
    app.router.add_post("/faults", add_fault)
    app.router.add_delete("/faults", clear)
    app.router.add_post("/faults/{id}/renew", renew)
    app.router.add_delete("/faults/{id}", remove)
    app.router.add_get("/stats", get_stats)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_put("/cohorts", set_cohorts)
    app.router.add_post("/cohorts/renew", renew_cohorts)
    app.router.add_get("/cohorts", get_cohorts)
    app.router.add_delete("/cohorts", clear_cohorts)
    app.router.add_get("/observations", observations)
    return app


def _int_param(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isdigit():
        raise BadRequestError(f"query parameter {name!r} must be a whole number >= 0, got {text!r}")
    return int(text)


def _lease_answer(fault: ActiveFault) -> dict[str, Any]:
    return {
        "id": fault.id,
        "lease": str(fault.lease),
        "expires_in": fault.expires_in,
        "applied": fault.applied,
        "hits": fault.hits,
    }


def _json(data: object, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)
