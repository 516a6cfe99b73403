"""A primary-model replica (``replica``): the ``primary`` model behind Open Inference Protocol v2.

It loads ``DIR/primary.json`` (a :class:`~mlchaos.demo._logistic.LinearModel`) and serves:
``GET /v2``, ``/v2/health/live`` → ``{"live": true}``, ``/v2/health/ready`` → ``{"ready":
true}``, ``GET /v2/models/primary`` (metadata) and ``.../ready``, and ``POST
/v2/models/primary/infer`` (also under ``/versions/1``) with one FP32 input of shape ``[1, 5]``
in the order of the model file's ``features`` (``x1, x2, f1, f2, f3``). The answer carries
outputs ``label`` (INT64) and ``probability`` (FP32), and ``parameters.replica``: the
replica's name, so a caller can tell which replica answered. Errors: 400 for bad input, 404 for
an unknown model, both ``{"error": "..."}``.

Each inference also spends ``work_ms`` of CPU (1 ms by default) and allocates a
``workspace_mib`` scratch buffer (4 MiB by default, every page touched, freed after), as a real
model does: the logistic model alone costs microseconds and no memory, so a replica starved of
CPU or memory would not show it. The work is counted in the thread's CPU time, so a throttled
replica takes longer in wall time, exactly as a real model would; a replica whose memory is
capped below its workspace meets the OOM killer at its next inference.

With ``workspace_device="cuda"`` the workspace is GPU device memory instead, allocated through
the CUDA driver API (:mod:`mlchaos._cuda`) on the first GPU the replica sees, written, and freed
after each inference; when the GPU has no room left the inference answers 503 ``{"error": "out of
GPU memory ..."}`` — as a GPU model server does when another job took the device memory — and the
replica serves again once memory is free.
"""

from __future__ import annotations

import mmap
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from mlchaos._cuda import OUT_OF_MEMORY, Cuda, CudaError
from mlchaos.demo._logistic import LinearModel
from mlchaos.demo._serve import serve
from mlchaos.errors import ConfigError
from mlchaos.testing._oip import (
    HTTPError,
    add_v2_routes,
    check_model,
    json_errors,
    label_output,
    model_metadata,
    probability_output,
    read_json_object,
    single_row,
)

__all__ = ["PRIMARY", "replica_app", "serve_replica"]

PRIMARY = "primary"
_MODEL = web.AppKey("model", LinearModel)
_NAME = web.AppKey("name", str)
_WORK = web.AppKey("work", tuple[float, int])
_CUDA = web.AppKey("cuda", Cuda)
WORK_MS = 1.0
WORKSPACE_MIB = 4


def replica_app(
    model_dir: Path,
    name: str,
    work_ms: float = WORK_MS,
    workspace_mib: int = WORKSPACE_MIB,
    workspace_device: str = "host",
) -> web.Application:
    """The replica's aiohttp application; :class:`ModelFileError` if the model cannot load,
    ConfigError when the workspace is on a GPU there is no driver or device for."""
    app = web.Application(middlewares=[json_errors()])
    app[_MODEL] = LinearModel.load(model_dir / f"{PRIMARY}.json")
    app[_NAME] = name
    app[_WORK] = (work_ms / 1000, workspace_mib * 2**20)
    if workspace_device == "cuda":
        try:
            app[_CUDA] = Cuda()
        except CudaError as exc:
            raise ConfigError(f"a GPU workspace needs a GPU: {exc}") from None
    add_v2_routes(
        app,
        server=f"mlchaos-demo-replica/{name}",
        model=PRIMARY,
        metadata=_metadata,
        infer=_infer,
    )
    return app


async def serve_replica(
    model_dir: Path,
    name: str,
    port: int,
    work_ms: float = WORK_MS,
    workspace_mib: int = WORKSPACE_MIB,
    workspace_device: str = "host",
) -> None:
    """Serve one replica until SIGTERM or SIGINT."""
    app = replica_app(model_dir, name, work_ms, workspace_mib, workspace_device)
    await serve(app, name, port)


async def _metadata(request: web.Request) -> web.Response:
    check_model(request.match_info, PRIMARY)
    model = request.app[_MODEL]
    outputs = [("label", "INT64"), ("probability", "FP32")]
    return web.json_response(model_metadata(PRIMARY, "features", model.features, outputs))


async def _infer(request: web.Request) -> web.Response:
    check_model(request.match_info, PRIMARY)
    model = request.app[_MODEL]
    request_id, values = single_row(await read_json_object(request), len(model.features))
    label, probability = model.predict(values)
    seconds, workspace = request.app[_WORK]
    cuda = request.app.get(_CUDA)
    if cuda is not None:
        _gpu_workspace(cuda, workspace)
        workspace = 0
    _work(seconds, workspace)
    answer: dict[str, Any] = {"model_name": PRIMARY, "model_version": model.version}
    if request_id is not None:
        answer["id"] = request_id
    answer["outputs"] = [label_output(label), probability_output(probability)]
    answer["parameters"] = {"replica": request.app[_NAME]}
    return web.json_response(answer)


def _gpu_workspace(cuda: Cuda, size: int) -> None:
    """Device memory for this inference: allocated, written, freed; 503 when there is none."""
    cuda.current()
    try:
        pointer = cuda.alloc(size)
    except CudaError as exc:
        if exc.errno == OUT_OF_MEMORY:
            raise HTTPError(f"out of GPU memory: {exc}", status=503) from None
        raise HTTPError(f"GPU workspace: {exc}", status=500) from None
    try:
        cuda.touch(pointer, size)
    finally:
        cuda.free(pointer)


def _work(seconds: float, workspace: int) -> None:
    """A scratch buffer of ``workspace`` bytes, and busy for ``seconds`` of this thread's CPU
    time (wall time when it gets all of a core).

    The buffer is a fresh anonymous mapping with every page written, unmapped after: new pages
    each time, charged to the process's cgroup now (heap memory freed earlier would be reused,
    and stay charged wherever it was first touched)."""
    if workspace:
        with mmap.mmap(-1, workspace) as scratch:
            for offset in range(0, workspace, mmap.PAGESIZE):
                scratch[offset] = 1
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass
