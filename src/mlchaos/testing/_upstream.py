"""The bundled test upstream: the toy classifier behind the Open Inference Protocol v2.

Endpoints: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/toy`` (metadata),
``/v2/models/toy/ready``, ``POST /v2/models/toy/infer`` (also under ``/versions/1``), plus
``POST /v1/models/toy:predict`` (KServe v1) and ``POST /predict`` (plain JSON). Malformed input
is answered 400 and an unknown model 404, both with ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from mlchaos.testing._toy import TOY_FEATURES, TOY_MODEL, toy_predict, toy_score

__all__ = ["Upstream", "serve_upstream_forever", "start_upstream", "upstream_app"]

_VERSION = "1"
_NUMERIC_DATATYPES = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}
    | {"FP16", "FP32", "FP64", "BF16"}
)
_N = len(TOY_FEATURES)


class _BadInputError(Exception):
    """A request the toy model cannot answer; the message goes back with status 400."""


def upstream_app() -> web.Application:
    """The aiohttp application of the test upstream (serve it with any aiohttp runner)."""
    app = web.Application(middlewares=[_json_errors])
    app.router.add_get("/v2", _server_metadata)
    app.router.add_get("/v2/health/live", _live)
    app.router.add_get("/v2/health/ready", _ready)
    for base in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
        app.router.add_get(base, _model_metadata)
        app.router.add_get(f"{base}/ready", _model_ready)
        app.router.add_post(f"{base}/infer", _infer)
    app.router.add_post("/v1/models/{model}:predict", _v1_predict)
    app.router.add_post("/predict", _predict)
    return app


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error leaves as ``{"error": "..."}`` with its status, as the protocol asks."""
    try:
        return await handler(request)
    except _BadInputError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": exc.reason}, status=exc.status)


def _model(request: web.Request) -> str:
    name = request.match_info["model"]
    version = request.match_info.get("version")
    if name != TOY_MODEL:
        raise web.HTTPNotFound(reason=f"model '{name}' not found")
    if version is not None and version != _VERSION:
        raise web.HTTPNotFound(reason=f"model '{name}' has no version '{version}'")
    return name


async def _server_metadata(request: web.Request) -> web.Response:
    return web.json_response({"name": "mlchaos-test-upstream", "version": "1", "extensions": []})


async def _live(request: web.Request) -> web.Response:
    return web.json_response({"live": True})


async def _ready(request: web.Request) -> web.Response:
    return web.json_response({"ready": True})


async def _model_ready(request: web.Request) -> web.Response:
    return web.json_response({"name": _model(request), "ready": True})


async def _model_metadata(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "name": _model(request),
            "versions": [_VERSION],
            "platform": "mlchaos-toy",
            "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, _N]}],
            "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
        }
    )


async def _infer(request: web.Request) -> web.Response:
    name = _model(request)
    body = await _json_object(request)
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise _BadInputError("'inputs' must be a non-empty list of tensors")
    if len(inputs) != 1:
        raise _BadInputError(f"model '{name}' takes one input tensor, got {len(inputs)}")
    rows = _tensor_rows(inputs[0])
    response: dict[str, Any] = {"model_name": name, "model_version": _VERSION}
    if "id" in body:
        response["id"] = body["id"]
    response["outputs"] = [
        {
            "name": "label",
            "shape": [len(rows)],
            "datatype": "INT64",
            "data": [toy_predict(r) for r in rows],
        }
    ]
    return web.json_response(response)


async def _v1_predict(request: web.Request) -> web.Response:
    _model(request)
    body = await _json_object(request)
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        raise _BadInputError("'instances' must be a non-empty list of rows")
    rows = [_row(x, f"instances[{i}]") for i, x in enumerate(instances)]
    return web.json_response({"predictions": [toy_predict(r) for r in rows]})


async def _predict(request: web.Request) -> web.Response:
    """Plain JSON: ``{"features": [x0, x1, x2, x3]}`` or ``{"features": {"x0": …, …}}``."""
    body = await _json_object(request)
    features = body.get("features")
    if isinstance(features, dict):
        missing = [f for f in TOY_FEATURES if f not in features]
        if missing:
            raise _BadInputError(f"'features' lacks {', '.join(missing)}")
        features = [features[f] for f in TOY_FEATURES]
    row = _row(features, "features")
    return web.json_response(
        {"model": TOY_MODEL, "prediction": toy_predict(row), "score": toy_score(row)}
    )


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise _BadInputError("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _BadInputError("the request body must be a JSON object")
    return body


def _tensor_rows(tensor: Any) -> list[list[float]]:
    """The rows of one v2 input tensor of shape ``[n, 4]`` (or ``[4]``), data row-major."""
    if not isinstance(tensor, dict):
        raise _BadInputError("each input must be an object with name, shape, datatype and data")
    shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
    if not isinstance(shape, list) or not shape or not all(_is_int(d) and d >= 0 for d in shape):
        raise _BadInputError(f"'shape' must be a list of non-negative integers, got {shape!r}")
    if datatype not in _NUMERIC_DATATYPES:
        raise _BadInputError(f"datatype {datatype!r} is not supported; send FP32")
    if not isinstance(data, list):
        raise _BadInputError("'data' must be a list")
    flat = _flatten(data)
    if len(shape) > 2 or shape[-1] != _N:
        raise _BadInputError(f"the toy model expects shape [n, {_N}], got {shape}")
    count = math.prod(shape)
    if len(flat) != count:
        raise _BadInputError(f"shape {shape} needs {count} values, got {len(flat)}")
    values = [_number(v, f"data[{i}]") for i, v in enumerate(flat)]
    return [values[i : i + _N] for i in range(0, count, _N)]


def _flatten(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in data:
        if isinstance(v, list):
            out.extend(_flatten(v))
        else:
            out.append(v)
    return out


def _row(value: Any, where: str) -> list[float]:
    if not isinstance(value, list) or len(value) != _N:
        raise _BadInputError(f"'{where}' must be a list of {_N} numbers")
    return [_number(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    raise _BadInputError(f"{where} must be a finite number, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Upstream:
    """A running test upstream; stop it with :meth:`stop` or use it as an async context."""

    host: str
    port: int
    _runner: web.AppRunner = field(repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def start_upstream(host: str = "127.0.0.1", port: int = 0) -> Upstream:
    """Serve the toy model on ``host:port`` (0: any free port) in the running event loop."""
    runner = web.AppRunner(upstream_app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
    except BaseException:
        await runner.cleanup()
        raise
    return Upstream(host=host, port=int(bound), _runner=runner)


async def serve_upstream_forever(
    host: str = "127.0.0.1", port: int = 8500, print_fn: Callable[[str], object] = print
) -> None:
    """Serve the toy model until SIGINT or SIGTERM (or until cancelled), then stop cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    upstream = await start_upstream(host, port)
    try:
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        print_fn(
            f"test upstream: model '{TOY_MODEL}' at {upstream.url} "
            "(Open Inference Protocol v2); Ctrl-C to stop"
        )
        await stop.wait()
        print_fn("test upstream: stopping")
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await upstream.stop()
