"""The Open Inference Protocol v2 shapes the demo's replicas and gateway share.

A demo model takes ONE numeric input tensor of shape ``[1, n]`` (``[n]`` and nested ``data``
are accepted too) and answers a label (``INT64``) and possibly a probability (``FP32``). Bad
input is an :class:`~mlchaos.demo._serve.HTTPError` (400); an unknown model or version 404.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from mlchaos.demo._serve import HTTPError

__all__ = [
    "add_v2_routes",
    "check_model",
    "label_output",
    "model_metadata",
    "probability_output",
    "single_row",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_NUMERIC = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}
    | {"FP16", "FP32", "FP64", "BF16"}
)


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


def single_row(body: dict[str, Any], width: int) -> tuple[Any, list[float]]:
    """``(id, values)`` of an infer request with one input of ``width`` finite numbers."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise HTTPError("'inputs' must be a list of exactly one tensor")
    tensor = inputs[0]
    shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
    if shape not in ([1, width], [width]):
        raise HTTPError(f"the input's shape must be [1, {width}], got {shape!r}")
    if datatype not in _NUMERIC:
        raise HTTPError(f"datatype {datatype!r} is not supported; send FP32")
    if not isinstance(data, list):
        raise HTTPError("'data' must be a list")
    flat = _flatten(data)
    if len(flat) != width:
        raise HTTPError(f"shape {shape} needs {width} values, got {len(flat)}")
    values = []
    for i, v in enumerate(flat):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise HTTPError(f"data[{i}] must be a finite number, got {v!r}")
        values.append(float(v))
    return body.get("id"), values


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
