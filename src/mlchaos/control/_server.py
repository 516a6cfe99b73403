"""What every mlchaos control API shares: bearer-token guard, JSON bodies, JSON errors.

The proxy's and the agent's control APIs are aiohttp applications built with
:func:`guarded_app`: every endpoint requires ``Authorization: Bearer <token>`` (compared in
constant time), and errors come back as ``{"error": "..."}`` with 400 (bad JSON or body, listing
each problem), 401, 404 (the lookup errors the caller names) or the HTTP exception's status.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from mlchaos.errors import ConfigError

__all__ = ["BadRequestError", "guarded_app", "json_error", "parse_body", "read_body"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_M = TypeVar("_M", bound=BaseModel)


class BadRequestError(Exception):
    """A request body the API cannot use; the message goes back with status 400."""


def guarded_app(token: str, not_found: tuple[type[Exception], ...]) -> web.Application:
    """An application whose every route needs the token; ``not_found`` errors answer 404."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            return json_error(401, "missing or wrong bearer token (Authorization: Bearer <token>)")
        try:
            return await handler(request)
        except (BadRequestError, ConfigError) as exc:
            return json_error(400, str(exc))
        except not_found as exc:
            return json_error(404, str(exc.args[0]) if exc.args else "not found")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return json_error(exc.status, exc.reason or "error")

    return web.Application(middlewares=[guard], client_max_size=1024 * 1024)


MAX_DEPTH = 32  # no control request needs deeper JSON; deeper is refused before it is used


async def read_body(request: web.Request, *, allow_empty: bool = False) -> object:
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise BadRequestError("the request body is empty: send a JSON object")
    try:
        data = json.loads(raw)
    except RecursionError:  # nested past the parser's own limit
        raise BadRequestError(
            f"the request body is nested more than {MAX_DEPTH} levels deep"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"the request body is not valid JSON: {exc}") from None
    if _depth(data) > MAX_DEPTH:
        raise BadRequestError(f"the request body is nested more than {MAX_DEPTH} levels deep")
    return data


def _depth(data: object) -> int:
    """How deeply lists and objects nest in ``data`` (iteratively: no recursion to exhaust)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                break
            values = node.values() if isinstance(node, dict) else node
            stack.extend((v, depth + 1) for v in values)
    return deepest


def parse_body(data: object, model: type[_M], what: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(body)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise BadRequestError(f"invalid {what}: {problems}") from None


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
