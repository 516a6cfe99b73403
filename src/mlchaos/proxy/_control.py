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
=========================  ===================================================================

Every endpoint requires ``Authorization: Bearer <token>`` (compared in constant time); errors
come back as ``{"error": "..."}`` with 400 (bad JSON or rule, listing each problem), 401, 404.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from mlchaos.errors import ConfigError
from mlchaos.proxy._faults import ActiveFault, FaultTable, UnknownFaultError
from mlchaos.proxy._rules import Rule
from mlchaos.proxy._stats import ProxyStats
from mlchaos.units import Duration

__all__ = ["control_app"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_M = TypeVar("_M", bound=BaseModel)


class _AddFault(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: Rule
    lease: Duration | None = None
    id: str | None = None


class _Renew(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    lease: Duration | None = None


class _BadRequestError(Exception):
    """A request body the API cannot use; the message goes back with status 400."""


def control_app(
    faults: FaultTable,
    token: str,
    stats: Callable[[], ProxyStats],
    info: Callable[[], dict[str, Any]],
) -> web.Application:
    """The aiohttp application of one proxy's control API."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            return _error(401, "missing or wrong bearer token (Authorization: Bearer <token>)")
        try:
            return await handler(request)
        except _BadRequestError as exc:
            return _error(400, str(exc))
        except ConfigError as exc:
            return _error(400, str(exc))
        except UnknownFaultError as exc:
            return _error(404, str(exc.args[0]))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error(exc.status, exc.reason or "error")

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **info(), "faults": len(faults)})

    async def list_faults(request: web.Request) -> web.Response:
        return _json({"faults": [f.model_dump(mode="json") for f in faults.list()]})

    async def add_fault(request: web.Request) -> web.Response:
        body = _parse(await _body(request), _AddFault, "fault")
        fault_id = faults.add(body.rule, body.lease, body.id)
        return _json(_lease_answer(faults.get(fault_id)), status=201)

    async def renew(request: web.Request) -> web.Response:
        raw = await _body(request, allow_empty=True)
        body = _parse(raw, _Renew, "renewal")
        return _json(_lease_answer(faults.renew(request.match_info["id"], body.lease)))

    async def remove(request: web.Request) -> web.Response:
        fault_id = request.match_info["id"]
        faults.remove(fault_id)
        return _json({"removed": fault_id})

    async def clear(request: web.Request) -> web.Response:
        return _json({"removed": faults.clear()})

    async def get_stats(request: web.Request) -> web.Response:
        return _json(stats().model_dump(mode="json"))

    app = web.Application(middlewares=[guard], client_max_size=1024 * 1024)
    app.router.add_get("/health", health)
    app.router.add_get("/faults", list_faults)
    app.router.add_post("/faults", add_fault)
    app.router.add_delete("/faults", clear)
    app.router.add_post("/faults/{id}/renew", renew)
    app.router.add_delete("/faults/{id}", remove)
    app.router.add_get("/stats", get_stats)
    return app


async def _body(request: web.Request, *, allow_empty: bool = False) -> object:
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise _BadRequestError("the request body is empty: send a JSON object")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _BadRequestError(f"the request body is not valid JSON: {exc}") from None


def _parse(data: object, model: type[_M], what: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(body)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise _BadRequestError(f"invalid {what}: {problems}") from None


def _lease_answer(fault: ActiveFault) -> dict[str, Any]:
    return {"id": fault.id, "lease": str(fault.lease), "expires_in": fault.expires_in}


def _json(data: object, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
