"""Paused processes under leases: each is resumed when its lease ends, unless renewed first.

The agent, not the runner, holds the lease: a runner that dies (even ``kill -9``) stops
renewing, and the process is resumed once its lease has passed. Stopping the agent resumes
every process it paused.

Nothing here blocks the agent's event loop: process scans run in a thread, and a pause (or a
resume) is answered once the kernel shows it in place — or reported unconfirmed, never assumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlchaos.errors import ConfigError, RunError
from mlchaos.process import ProcessSelector, TargetProcess, resolve_process
from mlchaos.units import Duration

if TYPE_CHECKING:
    import psutil

    from mlchaos.agent._guardian import Guardian

__all__ = ["PauseTable", "UnknownPauseError"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class UnknownPauseError(LookupError):
    """No paused process has this id (it was resumed, or its lease ended)."""


@dataclass(eq=False)
class _Paused:
    id: str
    target: TargetProcess
    lease: Duration
    expires_at: float
    handle: asyncio.TimerHandle

    stopped: bool = True  # the kernel showed the process stopped

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "pid": self.target.pid,
            "name": self.target.name,
            "lease": str(self.lease),
            "expires_in": round(max(0.0, self.expires_at - now), 3),
            "confirmed": self.stopped,
        }


class PauseTable:
    """SIGSTOP with a lease; SIGCONT on removal, on lease end and on :meth:`resume_all`."""

    def __init__(self, guardian: Guardian | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._paused: dict[str, _Paused] = {}
        self._guardian = guardian
        self.resumed_by_lease = 0

    def __len__(self) -> int:
        return len(self._paused)

    async def pause(
        self, fault_id: str, selector: ProcessSelector, lease: Duration
    ) -> dict[str, Any]:
        """Stop the selected process for ``lease``; an active id is renewed if it names the
        same process. RunError when there is no single process to stop. The answer's
        ``confirmed`` says whether the kernel showed it stopped within 0.2 s."""
        if not _ID.fullmatch(fault_id):
            raise ConfigError(f"invalid id {fault_id!r}: letters, digits and ._:- only")
        if not lease.seconds > 0:
            raise ConfigError("the lease must be positive")
        target = await asyncio.to_thread(resolve_process, selector)  # a process scan
        current = self._paused.get(fault_id)
        if current is not None:
            if current.target != target:
                raise ConfigError(f"id {fault_id!r} already pauses another process")
            return self.renew(fault_id, lease)
        proc = target.alive()
        if proc is None:
            raise RunError(f"{selector.describe()} exited before it could be paused")
        if self._guardian is not None:  # told first: from here on, the agent's death resumes it
            self._guardian.hold(target.pid, target.created)
        proc.suspend()
        expires = self._loop.time() + lease.seconds
        handle = self._loop.call_at(expires, self._expire, fault_id)
        entry = self._paused[fault_id] = _Paused(fault_id, target, lease, expires, handle)
        entry.stopped = await _shown(proc, stopped=True)
        return entry.to_dict(self._loop.time())

    def renew(self, fault_id: str, lease: Duration | None = None) -> dict[str, Any]:
        entry = self._get(fault_id)
        entry.lease = lease or entry.lease
        entry.handle.cancel()
        entry.expires_at = self._loop.time() + entry.lease.seconds
        entry.handle = self._loop.call_at(entry.expires_at, self._expire, fault_id)
        return entry.to_dict(self._loop.time())

    def resume(self, fault_id: str) -> bool:
        """Resume (SIGCONT at once) and forget; True when the process was still there."""
        entry = self._get(fault_id)
        entry.handle.cancel()
        del self._paused[fault_id]
        proc = entry.target.alive()
        if proc is not None:
            proc.resume()
        if self._guardian is not None:
            self._guardian.release(entry.target.pid)
        return proc is not None

    async def resume_confirmed(self, fault_id: str) -> bool:
        """:meth:`resume`, answered once the kernel shows the process running (at most 0.2 s)."""
        proc = self._get(fault_id).target.alive()
        resumed = self.resume(fault_id)
        if resumed and proc is not None:
            await _shown(proc, stopped=False)
        return resumed

    def resume_all(self) -> int:
        return sum(self.resume(fault_id) for fault_id in list(self._paused))

    def list(self) -> list[dict[str, Any]]:
        now = self._loop.time()
        return [p.to_dict(now) for p in self._paused.values()]

    def _get(self, fault_id: str) -> _Paused:
        try:
            return self._paused[fault_id]
        except KeyError:
            raise UnknownPauseError(f"no paused process with id {fault_id!r}") from None

    def _expire(self, fault_id: str) -> None:
        if fault_id in self._paused:
            self.resumed_by_lease += 1
            self.resume(fault_id)


async def _shown(proc: psutil.Process, *, stopped: bool, limit_s: float = 0.2) -> bool:
    """SIGSTOP and SIGCONT are delivered asynchronously: whether the kernel shows the process
    stopped (or running again) within ``limit_s`` — almost always within microseconds. Polls
    without blocking the event loop."""
    import psutil  # noqa: PLC0415

    deadline = time.monotonic() + limit_s
    with contextlib.suppress(psutil.Error):
        while (proc.status() == psutil.STATUS_STOPPED) != stopped:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.001)
        return True
    return False
