"""Start the demo's services as separate OS processes and guarantee that none survives.

A service is any program that binds its own ephemeral port(s) and announces readiness by
printing ONE JSON line on stdout, e.g. ``{"ready": true, "name": "model-a", "port": 43121}``.
:class:`ServiceGroup` starts it, reads its output (stdout and stderr, merged) until that
line, keeps every other line as the service's log tail, and stops it again: SIGTERM to its
whole process group, a grace period, then SIGKILL, always reaping and closing the pipe.

Nothing survives, even when the supervisor itself is SIGKILLed:

* every service runs in its own session (``start_new_session``), so its process group holds
  it and its children; stopping signals the group, and grandchildren go too;
* on Linux every service starts through a tiny Python bootstrap that sets
  ``PR_SET_PDEATHSIG=SIGKILL`` and then execs the service (same pid;
  :func:`mlchaos._children.dying_with_us`). The kernel then kills the service when the
  supervisor dies, however it dies.

Limits: ``PR_SET_PDEATHSIG`` is Linux-only (elsewhere services start directly and only an
orderly stop cleans up); it covers the service process itself, not grandchildren it
spawns (those go with the process group on an orderly stop); and it fires when the *thread*
that started the service exits, so the event loop that owns a group must outlive it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Self

from mlchaos._children import dying_with_us
from mlchaos.errors import ConfigError, RunError

__all__ = ["RunningService", "ServiceGroup", "ServiceSpec", "ServiceStartError"]

_LOG_TAIL_LINES = 50
_ERROR_TAIL_LINES = 10
_LINE_LIMIT = 1 << 20  # a longer line is kept as a marker, not an error
_PIPE_DRAIN_S = 1.0  # after the group is dead, how long its pipe may take to reach EOF


class ServiceStartError(RunError):
    """A service exited, timed out or misbehaved before printing its ready line."""

    def __init__(
        self,
        name: str,
        reason: str,
        *,
        pid: int,
        returncode: int | None,
        log_tail: Sequence[str],
    ) -> None:
        self.name = name
        self.pid = pid
        self.returncode = returncode
        self.log_tail = list(log_tail)
        last = self.log_tail[-_ERROR_TAIL_LINES:]
        shown = "\n".join(f"  | {line}" for line in last) if last else "  (it printed nothing)"
        super().__init__(f"service {name!r} (pid {pid}) {reason}; its last output:\n{shown}")


@dataclass(frozen=True)
class ServiceSpec:
    """How to start one service: its name, command line, extra environment and ready timeout.

    ``env`` is added to the supervisor's environment (with ``PYTHONUNBUFFERED=1`` by default,
    so a Python service's ready line is not stuck in a buffer).
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    ready_timeout: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        problems = []
        if not self.name:
            problems.append("name: must not be empty")
        if not self.argv:
            problems.append("argv: must name a program")
        if not self.ready_timeout > 0:
            problems.append(f"ready_timeout: must be positive, got {self.ready_timeout}")
        if problems:
            raise ConfigError(f"service {self.name!r}: " + "; ".join(problems))


class RunningService:
    """A started service: its pid, the info from its ready line, and its live log tail."""

    def __init__(
        self,
        spec: ServiceSpec,
        process: asyncio.subprocess.Process,
        info: Mapping[str, object],
        tail: collections.deque[str],
        pump: asyncio.Task[None],
    ) -> None:
        self.spec = spec
        self._process = process
        self._info = MappingProxyType(dict(info))
        self._tail = tail
        self._pump = pump

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        """The service's pid, which is also its process group id."""
        return self._process.pid

    @property
    def info(self) -> Mapping[str, object]:
        """The service's ready line, parsed."""
        return self._info

    @property
    def port(self) -> int:
        """The port from the ready line."""
        port = self._info["port"]
        assert isinstance(port, int)  # checked when the ready line was read
        return port

    @property
    def returncode(self) -> int | None:
        """None while it runs; its exit status (negative: killed by that signal) after."""
        return self._process.returncode

    @property
    def running(self) -> bool:
        return self._process.returncode is None

    def log_tail(self) -> list[str]:
        """The last lines it printed (stdout and stderr), ready line excluded."""
        return list(self._tail)

    async def wait(self) -> int:
        """Wait until it exits, however that happens, and return its exit status."""
        return await self._process.wait()


class ServiceGroup:
    """The services of one demo; leaving ``async with`` stops them all in reverse start order.

    ``grace`` is how long a stopped service has between SIGTERM and SIGKILL.
    """

    def __init__(self, *, grace: float = 5.0) -> None:
        self._grace = grace
        self._services: dict[str, RunningService] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_all()

    def service(self, name: str) -> RunningService:
        """The latest process started under ``name`` (running or not); KeyError if none."""
        return self._services[name]

    def running(self, name: str) -> bool:
        """Whether the service ``name`` is running now; KeyError if never started."""
        return self._services[name].running

    async def start(self, spec: ServiceSpec) -> RunningService:
        """Start a service and return once it printed its ready line.

        Raises :class:`ServiceStartError`, with nothing left running, when it exits or
        times out before that line.
        """
        previous = self._services.get(spec.name)
        if previous is not None and previous.running:
            raise ValueError(f"service {spec.name!r} is already running (pid {previous.pid})")
        argv = dying_with_us(spec.argv)
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **spec.env},
            start_new_session=True,
            limit=_LINE_LIMIT,
        )
        tail: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL_LINES)
        ready: asyncio.Future[dict[str, object] | None] = asyncio.get_running_loop().create_future()
        pump = asyncio.create_task(_pump(process, tail, ready), name=f"service {spec.name} output")

        try:
            outcome = await _await_ready(spec, process, ready)
        except BaseException:  # cancelled while waiting: leave nothing behind
            await _shutdown(process, pump, 0.0)
            raise
        if isinstance(outcome, str):
            await _shutdown(process, pump, 0.0)  # first, so the log tail is complete
            raise ServiceStartError(
                spec.name,
                outcome,
                pid=process.pid,
                returncode=process.returncode,
                log_tail=tail,
            )
        service = RunningService(spec, process, outcome, tail, pump)
        self._services.pop(spec.name, None)  # re-insert: dict order is start order
        self._services[spec.name] = service
        return service

    async def stop(self, name: str, *, grace: float | None = None) -> int:
        """Stop a service and everything in its process group; return its exit status.

        SIGTERM, up to ``grace`` seconds (the group's by default), then SIGKILL; the process
        is reaped and its pipe closed. Stopping a service that already exited just cleans up.
        """
        service = self._services[name]
        await _shutdown(service._process, service._pump, self._grace if grace is None else grace)
        return await service.wait()

    async def restart(self, name: str) -> RunningService:
        """Stop the service (if running) and start a new process from the same spec."""
        service = self._services[name]
        await self.stop(name)
        return await self.start(service.spec)

    async def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to the service's process group, as a crash or fault would.

        With SIGKILL this returns once the process is dead and reaped, so :meth:`running`
        is already False; other signals (SIGSTOP, SIGTERM...) return once sent.
        """
        service = self._services[name]
        if not service.running:
            return
        _signal_group(service.pid, sig)
        if sig == signal.SIGKILL:
            await service.wait()

    async def stop_all(self) -> None:
        """Stop every service, newest first; each gets the group's grace period."""
        try:
            for name in reversed(list(self._services)):
                await self.stop(name)
        finally:
            # Reached early only if stopping was cancelled or failed: kill what is left now.
            for service in self._services.values():
                if service.running:
                    _signal_group(service.pid, signal.SIGKILL)


async def _await_ready(
    spec: ServiceSpec,
    process: asyncio.subprocess.Process,
    ready: asyncio.Future[dict[str, object] | None],
) -> dict[str, object] | str:
    """The service's ready line, or why it never came."""
    try:
        async with asyncio.timeout(spec.ready_timeout):
            info = await asyncio.shield(ready)
            if info is None:  # its output ended before the ready line
                await process.wait()
    except TimeoutError:
        return f"printed no ready line within {spec.ready_timeout}s"
    if info is None:
        return f"exited with code {process.returncode} before it was ready"
    if not isinstance(info.get("port"), int):
        return f"printed a ready line without an integer port: {json.dumps(info)}"
    return info


async def _pump(
    process: asyncio.subprocess.Process,
    tail: collections.deque[str],
    ready: asyncio.Future[dict[str, object] | None],
) -> None:
    """Read the service's output to EOF: resolve ``ready`` with its ready line, keep the rest.

    Draining continues after the ready line, so a chatty service never blocks on a full pipe.
    """
    assert process.stdout is not None
    try:
        while True:
            try:
                raw = await process.stdout.readline()
            except ValueError:  # a line over the limit; asyncio dropped it
                tail.append(f"<line longer than {_LINE_LIMIT} bytes dropped>")
                continue
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\r\n")
            if not ready.done():
                info = _ready_info(line)
                if info is not None:
                    ready.set_result(info)
                    continue
            tail.append(line)
    finally:
        if not ready.done():
            ready.set_result(None)


def _ready_info(line: str) -> dict[str, object] | None:
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if isinstance(value, dict) and value.get("ready") is True:
        return value
    return None


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


async def _shutdown(
    process: asyncio.subprocess.Process, pump: asyncio.Task[None], grace: float
) -> None:
    """SIGTERM the group, wait ``grace``, SIGKILL it, reap, and let the pipe reach EOF.

    The group id is the service's pid, which the kernel does not reuse while the (possibly
    zombie) leader or any member of its group exists.
    """
    try:
        if process.returncode is None:
            if grace > 0:
                _signal_group(process.pid, signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(grace):
                        await process.wait()
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()
        # Sweep what is left of the group (grandchildren), so their copies of the pipe close.
        _signal_group(process.pid, signal.SIGKILL)
    except BaseException:
        _signal_group(process.pid, signal.SIGKILL)
        raise
    finally:
        await _drain(process, pump)


async def _drain(process: asyncio.subprocess.Process, pump: asyncio.Task[None]) -> None:
    done, _ = await asyncio.wait({pump}, timeout=_PIPE_DRAIN_S)
    if not done:
        # Something that left the group (setsid) still holds the pipe: stop reading and
        # close the transport ourselves, or it would leak (and warn) at garbage collection.
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        transport = getattr(process, "_transport", None)
        if transport is not None:
            transport.close()
