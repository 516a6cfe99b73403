"""The bundled test upstream: the toy classifier behind the Open Inference Protocol v2.

Endpoints: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/toy`` (metadata),
``/v2/models/toy/ready``, ``POST /v2/models/toy/infer`` (also under ``/versions/1``), plus
``POST /v1/models/toy:predict`` (KServe v1) and ``POST /predict`` (plain JSON). Malformed input
is answered 400 and an unknown model 404, both with ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from mlchaos.testing._oip import (
    HTTPError,
    add_v2_routes,
    check_model,
    json_errors,
    number,
    read_json_object,
    tensor_rows,
)
from mlchaos.testing._toy import TOY_FEATURES, TOY_MODEL, toy_predict, toy_score

__all__ = ["Upstream", "serve_upstream_forever", "start_upstream", "upstream_app"]

_VERSION = "1"
_N = len(TOY_FEATURES)


def upstream_app() -> web.Application:
    """The aiohttp application of the test upstream (serve it with any aiohttp runner)."""
    app = web.Application(middlewares=[json_errors()])
    add_v2_routes(
        app,
        server="mlchaos-test-upstream",
        model=TOY_MODEL,
        metadata=_model_metadata,
        infer=_infer,
    )
    app.router.add_post("/v1/models/{model}:predict", _v1_predict)
    app.router.add_post("/predict", _predict)
    return app


async def _model_metadata(request: web.Request) -> web.Response:
    check_model(request.match_info, TOY_MODEL, _VERSION)
    return web.json_response(
        {
            "name": TOY_MODEL,
            "versions": [_VERSION],
            "platform": "mlchaos-toy",
            "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, _N]}],
            "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
        }
    )


async def _infer(request: web.Request) -> web.Response:
    check_model(request.match_info, TOY_MODEL, _VERSION)
    name = TOY_MODEL
    body = await read_json_object(request)
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise HTTPError("'inputs' must be a non-empty list of tensors")
    if len(inputs) != 1:
        raise HTTPError(f"model '{name}' takes one input tensor, got {len(inputs)}")
    rows = tensor_rows(inputs[0], _N)
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
    check_model(request.match_info, TOY_MODEL, _VERSION)
    body = await read_json_object(request)
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        raise HTTPError("'instances' must be a non-empty list of rows")
    rows = [_row(x, f"instances[{i}]") for i, x in enumerate(instances)]
    return web.json_response({"predictions": [toy_predict(r) for r in rows]})


async def _predict(request: web.Request) -> web.Response:
    """Plain JSON: ``{"features": [x0, x1, x2, x3]}`` or ``{"features": {"x0": …, …}}``."""
    body = await read_json_object(request)
    features = body.get("features")
    if isinstance(features, dict):
        missing = [f for f in TOY_FEATURES if f not in features]
        if missing:
            raise HTTPError(f"'features' lacks {', '.join(missing)}")
        features = [features[f] for f in TOY_FEATURES]
    row = _row(features, "features")
    return web.json_response(
        {"model": TOY_MODEL, "prediction": toy_predict(row), "score": toy_score(row)}
    )


def _row(value: Any, where: str) -> list[float]:
    if not isinstance(value, list) or len(value) != _N:
        raise HTTPError(f"'{where}' must be a list of {_N} numbers")
    return [number(v, f"{where}[{i}]") for i, v in enumerate(value)]


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
