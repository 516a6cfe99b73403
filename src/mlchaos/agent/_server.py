"""The agent: a long-lived mlchaos process that holds process faults under leases.

Its control API (loopback, bearer token from a 0600 file):

=========================  ===================================================================
``GET /health``            ``{"status": "ok", "faults": n, "resumed_by_lease": n}``
``POST /check``            ``{"process": selector, "cpu"?, "memory"?, "peer"?, "gpu"?,
                           "device"?}`` → ``{"pid", "name"}`` (resolves; with limits, checks
                           cgroups can be made; with a peer, that the two can be partitioned;
                           with ``"gpu": true``, that there is a GPU to take memory on; acts not)
``GET /faults``            ``{"faults": [{"id", "pid", "name", "lease", "expires_in"}, ...]}``
``POST /faults``           ``{"id", "action": "pause", "process": selector, "lease": "5s"}``, or
                           ``{"id", "action": "confine", "process", "lease", "cpu": 0.1,
                           "memory": bytes}`` (a cgroup: CPU in cores, a memory limit; either)
                           → 201 (an active id naming the same process is renewed)
``POST /faults/{id}/renew`` ``{"lease": "5s"?}``
``DELETE /faults/{id}``    resume it: ``{"removed": id, "resumed": bool}``
=========================  ===================================================================

A selector is ``{"pidfile": PATH}`` (absolute), ``{"pattern": REGEX}`` or ``{"port": N}``.
Stopping the agent (SIGTERM, SIGINT) undoes every fault it holds; its guardian does when it dies.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Self

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlchaos.agent._cgroup import Limits, unsupported
from mlchaos.agent._guardian import Guardian
from mlchaos.agent._table import PauseTable, UnknownPauseError, choose_gpu, plan_partition
from mlchaos.control import guarded_app, parse_body, read_body, resolve_token
from mlchaos.errors import AgentStartError, MlchaosError, RunError
from mlchaos.process import ProcessSelector, TargetProcess, resolve_process
from mlchaos.units import Duration, PositiveDuration

__all__ = ["AgentServer", "serve_agent_forever"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Check(_Model):
    process: ProcessSelector
    cpu: float | None = Field(None, gt=0, le=1024)
    memory: int | None = Field(None, ge=1 << 20)
    peer: ProcessSelector | None = None
    gpu: bool = False
    device: int | None = Field(None, ge=0)


class _GpuMemory(_Model):
    id: str
    action: Literal["gpu_memory"]
    process: ProcessSelector
    lease: PositiveDuration = Duration(5.0)
    device: int | None = Field(None, ge=0, description="NVML index; default: the process's GPU")
    leave_free: int | None = Field(None, ge=0, description="bytes left free")
    leave_free_share: float | None = Field(None, ge=0, lt=1, description="share left free")

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.leave_free is None) == (self.leave_free_share is None):
            raise ValueError("give one of 'leave_free' (bytes) and 'leave_free_share'")
        return self


class _Partition(_Model):
    id: str
    action: Literal["partition"]
    process: ProcessSelector
    peer: ProcessSelector
    lease: PositiveDuration = Duration(5.0)
    direction: Literal["both", "outbound", "inbound"] = "both"
    mode: Literal["silent", "loud"] = "silent"


class _Pause(_Model):
    id: str
    action: Literal["pause"] = "pause"
    process: ProcessSelector
    lease: PositiveDuration = Duration(5.0)


class _Confine(_Model):
    id: str
    action: Literal["confine"]
    process: ProcessSelector
    lease: PositiveDuration = Duration(5.0)
    cpu: float | None = Field(None, gt=0, le=1024, description="cores, e.g. 0.1")
    memory: int | None = Field(None, ge=1 << 20, description="bytes, at least 1 MiB")

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.cpu is None and self.memory is None:
            raise ValueError("give 'cpu' (cores), 'memory' (bytes) or both")
        return self


class _Renew(_Model):
    lease: PositiveDuration | None = None


class AgentServer:
    """``async with AgentServer(port=0, token_file=F) as agent``: ``agent.url``, ``agent.token``."""

    def __init__(self, *, port: int = 0, token_file: str | None = None) -> None:
        self._port = port
        self._token_file = token_file
        self._runner: web.AppRunner | None = None
        self.table: PauseTable | None = None
        self.url = ""
        self.token = ""
        self._owned: Path | None = None
        self._guardian: Guardian | None = None

    async def __aenter__(self) -> AgentServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._guardian = Guardian()  # resumes what this agent paused if it dies
        table = self.table = PauseTable(self._guardian)
        try:
            source = resolve_token(None, self._token_file, self._port, kind="agent")
        except MlchaosError as exc:
            raise AgentStartError(f"the agent cannot start: {exc}") from None
        self.token = source.token
        self.token_file = source.path
        self._owned = source.path if source.owned else None
        app = _app(table, self.token)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            raise AgentStartError(
                f"cannot listen on 127.0.0.1:{self._port} for the agent's control API: "
                f"{exc.strerror or exc}"
            ) from None
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self.table is not None:
            await self.table.settle()
            self.table.resume_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        owned, self._owned = self._owned, None
        if owned is not None:  # a default token file this agent made (or took over): gone
            owned.unlink(missing_ok=True)
        guardian, self._guardian = self._guardian, None
        if guardian is not None:
            guardian.close()


def _app(table: PauseTable, token: str) -> web.Application:
    async def health(request: web.Request) -> web.Response:
        return web.json_response(
            {"status": "ok", "faults": len(table), "resumed_by_lease": table.resumed_by_lease}
        )

    async def check(request: web.Request) -> web.Response:
        body = parse_body(await read_body(request), _Check, "check")
        target = await asyncio.to_thread(_resolve, body.process)  # a process scan
        limits = Limits(cpu=body.cpu, memory=body.memory)
        why = unsupported(limits) if limits.controllers() else None
        if why is not None:
            raise web.HTTPConflict(reason=f"cannot confine pid {target.pid}: {why}")
        if body.gpu:
            try:
                await asyncio.to_thread(choose_gpu, target, body.device)
            except RunError as exc:
                raise web.HTTPConflict(reason=str(exc)) from None
        if body.peer is not None:
            try:
                await asyncio.to_thread(plan_partition, target, body.peer, "both", "silent")
            except RunError as exc:
                raise web.HTTPConflict(reason=str(exc)) from None
        return web.json_response({"pid": target.pid, "name": target.name})

    async def list_faults(request: web.Request) -> web.Response:
        return web.json_response({"faults": table.list()})

    async def add(request: web.Request) -> web.Response:
        raw = await read_body(request)
        try:
            action = raw.get("action") if isinstance(raw, dict) else None
            if action == "gpu_memory":
                taken = parse_body(raw, _GpuMemory, "fault")
                answer = await table.take_gpu_memory(
                    taken.id,
                    taken.process,
                    taken.lease,
                    device=taken.device,
                    leave_free=taken.leave_free,
                    leave_free_share=taken.leave_free_share,
                )
            elif action == "partition":
                cut = parse_body(raw, _Partition, "fault")
                answer = await table.partition(
                    cut.id, cut.process, cut.peer, cut.lease, direction=cut.direction, mode=cut.mode
                )
            elif action == "confine":
                body = parse_body(raw, _Confine, "fault")
                limits = Limits(cpu=body.cpu, memory=body.memory)
                answer = await table.confine(body.id, body.process, body.lease, limits)
            else:
                pause = parse_body(raw, _Pause, "fault")
                answer = await table.pause(pause.id, pause.process, pause.lease)
        except RunError as exc:
            raise web.HTTPConflict(reason=str(exc)) from None
        return web.json_response(answer, status=201)

    async def renew(request: web.Request) -> web.Response:
        body = parse_body(await read_body(request, allow_empty=True), _Renew, "renewal")
        return web.json_response(table.renew(request.match_info["id"], body.lease))

    async def remove(request: web.Request) -> web.Response:
        fault_id = request.match_info["id"]
        resumed = await table.resume_confirmed(fault_id)
        return web.json_response({"removed": fault_id, "resumed": resumed})

    app = guarded_app(token, (UnknownPauseError,))
    app.router.add_get("/health", health)
    app.router.add_post("/check", check)
    app.router.add_get("/faults", list_faults)
    app.router.add_post("/faults", add)
    app.router.add_post("/faults/{id}/renew", renew)
    app.router.add_delete("/faults/{id}", remove)
    return app


def _resolve(selector: ProcessSelector) -> TargetProcess:
    try:
        return resolve_process(selector)
    except RunError as exc:
        raise web.HTTPConflict(reason=str(exc)) from None


async def serve_agent_forever(
    *, port: int, token_file: str | None, print_fn: Callable[[str], object] = print
) -> None:
    """Run the agent until SIGINT or SIGTERM; its first line is a JSON ready line."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    async with AgentServer(port=port, token_file=token_file) as agent:
        try:
            for sig in signals:
                loop.add_signal_handler(sig, stop.set)
            ready = {
                "ready": True,
                "port": int(agent.url.rsplit(":", 1)[1]),
                "control": agent.url,
                "token_file": None if agent.token_file is None else str(agent.token_file),
            }
            print_fn(json.dumps(ready))
            print_fn(f"mlchaos agent: control API {agent.url}; Ctrl-C to stop")
            await stop.wait()
            print_fn("mlchaos agent: stopping (resuming every paused process)")
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
