"""The server side of the Open Inference Protocol v2, shared by every model server mlchaos
ships: the toy upstream here and the demo's replicas and gateway.

Routes (:func:`add_v2_routes`), the model check of a route (404), reading a request's input
tensor into rows of numbers (:func:`tensor_rows`, 400 with a message naming the problem), the
one-row output tensors and model metadata of the demo's models, and errors answered as
``{"error": "..."}`` (:class:`HTTPError`, :func:`json_errors`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

__all__ = [
    "HTTPError",
    "add_v2_routes",
    "check_model",
    "json_errors",
    "label_output",
    "model_metadata",
    "probability_output",
    "read_json_object",
    "single_row",
    "tensor_rows",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

NUMERIC_DATATYPES = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}
    | {"FP16", "FP32", "FP64", "BF16"}
)


class HTTPError(Exception):
    """A request the server refuses: answered ``{"error": message}`` with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def json_errors() -> Any:
    """An aiohttp middleware answering :class:`HTTPError` and aiohttp's own errors (404, 405,
    413...) as ``{"error": "..."}`` with their status, as the protocol asks."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except HTTPError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return web.json_response({"error": exc.reason}, status=exc.status)

    return middleware


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; :class:`HTTPError` (400) when it is not one."""
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise HTTPError("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HTTPError("the request body must be a JSON object")
    return body


def add_v2_routes(
    app: web.Application, *, server: str, model: str, metadata: Handler, infer: Handler
) -> None:
    """The v2 routes of a server of one model: server metadata, health, model metadata/ready,
    infer (also under ``/versions/{version}``)."""

    async def server_metadata(request: web.Request) -> web.Response:
        return web.json_response({"name": server, "version": "1", "extensions": []})

    async def live(request: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"ready": True})

    async def model_ready(request: web.Request) -> web.Response:
        check_model(request.match_info, model)
        return web.json_response({"name": model, "ready": True})

    app.router.add_get("/v2", server_metadata)
    app.router.add_get("/v2/health/live", live)
    app.router.add_get("/v2/health/ready", ready)
    for base in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
        app.router.add_get(base, metadata)
        app.router.add_get(f"{base}/ready", model_ready)
        app.router.add_post(f"{base}/infer", infer)


def check_model(match: Mapping[str, str], name: str, version: str = "1") -> None:
    """404 unless the route's ``model`` (and ``version``, if given) is the one served."""
    model = match.get("model")
    if model != name:
        raise HTTPError(f"model '{model}' not found; this server has '{name}'", status=404)
    wanted = match.get("version")
    if wanted is not None and wanted != version:
        raise HTTPError(f"model '{name}' has no version '{wanted}'", status=404)


def tensor_rows(tensor: Any, width: int) -> list[list[float]]:
    """The rows of one v2 input tensor of shape ``[n, width]`` (or ``[width]``: one row); its
    ``data`` row-major, nested lists flattened, every value a finite number (booleans 0/1)."""
    if not isinstance(tensor, dict):
        raise HTTPError("each input must be an object with name, shape, datatype and data")
    shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
    if not isinstance(shape, list) or not shape or not all(_is_int(d) and d >= 0 for d in shape):
        raise HTTPError(f"'shape' must be a list of non-negative integers, got {shape!r}")
    if datatype not in NUMERIC_DATATYPES:
        raise HTTPError(f"datatype {datatype!r} is not supported; send FP32")
    if not isinstance(data, list):
        raise HTTPError("'data' must be a list")
    if len(shape) > 2 or shape[-1] != width:
        raise HTTPError(f"the model expects shape [n, {width}], got {shape}")
    flat = _flatten(data)
    count = math.prod(shape)
    if len(flat) != count:
        raise HTTPError(f"shape {shape} needs {count} values, got {len(flat)}")
    values = [number(v, f"data[{i}]") for i, v in enumerate(flat)]
    return [values[i : i + width] for i in range(0, count, width)]


def single_row(body: dict[str, Any], width: int) -> tuple[Any, list[float]]:
    """``(id, values)`` of an infer request of exactly one input tensor holding one row."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise HTTPError("'inputs' must be a list of exactly one tensor")
    rows = tensor_rows(inputs[0], width)
    if len(rows) != 1:
        raise HTTPError(f"the model takes one row per request, got {len(rows)}")
    return body.get("id"), rows[0]


def number(value: Any, where: str) -> float:
    """A finite number (a boolean is 0 or 1); 400 naming ``where`` otherwise."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    raise HTTPError(f"{where} must be a finite number, got {value!r}")


def label_output(label: int) -> dict[str, Any]:
    """The ``label`` output tensor of one row."""
    return {"name": "label", "shape": [1, 1], "datatype": "INT64", "data": [label]}


def probability_output(probability: float) -> dict[str, Any]:
    """The ``probability`` output tensor of one row."""
    return {"name": "probability", "shape": [1, 1], "datatype": "FP32", "data": [probability]}


def model_metadata(
    name: str, input_name: str, features: Sequence[str], outputs: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """The v2 model metadata document of a one-row model over ``features``."""
    return {
        "name": name,
        "versions": ["1"],
        "platform": "mlchaos-demo",
        "inputs": [
            {"name": input_name, "datatype": "FP32", "shape": [1, len(features)]},
        ],
        "outputs": [{"name": n, "datatype": d, "shape": [1, 1]} for n, d in outputs],
        "parameters": {"features": list(features)},
    }


def _flatten(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in data:
        if isinstance(v, list):
            out.extend(_flatten(v))
        else:
            out.append(v)
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
