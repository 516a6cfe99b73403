"""Process faults under leases: each is undone when its lease ends, unless renewed first.

Four kinds: a *pause* (SIGSTOP, undone by SIGCONT), a *confinement* (the process moved into a
cgroup of ours with a CPU quota or a memory limit, undone by moving it back; ``_cgroup``) and a
*partition* (routing rules that cut the process's network namespace from a peer's, undone by
deleting them; ``_netns``) and *GPU memory pressure* (a holder process that takes device memory on
the process's GPU, undone by ending it; ``_gpu``). The
agent, not the runner, holds the lease: a runner that dies (even ``kill -9``) stops renewing,
and the fault is undone once its lease has passed. Stopping the agent undoes every fault.

Nothing here blocks the agent's event loop: process scans, ``ip`` commands and GPU holders run in
a thread, and a fault (or its undoing) is answered once the kernel shows it in place — or
reported unconfirmed, never assumed. Only :meth:`PauseTable.resume_all`, as the agent stops,
undoes everything inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlchaos.agent import _gpu, _netns
from mlchaos.agent._cgroup import Confinement, Limits, confine, in_place, release
from mlchaos.errors import ConfigError, RunError
from mlchaos.process import ProcessSelector, TargetProcess, resolve_process
from mlchaos.units import Duration

if TYPE_CHECKING:
    import psutil

    from mlchaos.agent._guardian import Guardian

__all__ = ["PauseTable", "UnknownPauseError"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class UnknownPauseError(LookupError):
    """No process fault has this id (it was undone, or its lease ended)."""


@dataclass(eq=False)
class _Paused:
    id: str
    target: TargetProcess
    lease: Duration
    expires_at: float
    handle: asyncio.TimerHandle

    stopped: bool = True  # the kernel showed the process stopped (or confined)
    confinement: Confinement | None = None  # a cgroup fault
    partition: _netns.Partition | None = None  # a network partition
    gpu: _gpu.Pressure | None = None  # GPU memory taken; none of these: a pause

    def to_dict(self, now: float) -> dict[str, Any]:
        action = "pause" if self.confinement is None else "confine"
        if self.partition is not None:
            action = "partition"
        if self.gpu is not None:
            action = "gpu_memory"
        answer: dict[str, Any] = {
            "id": self.id,
            "action": action,
            "pid": self.target.pid,
            "name": self.target.name,
            "lease": str(self.lease),
            "expires_in": round(max(0.0, self.expires_at - now), 3),
            "confirmed": self.stopped,
        }
        if self.confinement is not None:
            answer["cgroup"] = in_place(self.confinement)
        if self.partition is not None:
            answer["rules"] = self.partition.describe()
        if self.gpu is not None:
            answer["gpu"] = self.gpu.describe()
        return answer


class PauseTable:
    """Pauses and confinements with a lease; undone on removal, on lease end and on
    :meth:`resume_all`."""

    def __init__(self, guardian: Guardian | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._paused: dict[str, _Paused] = {}
        self._guardian = guardian
        self.resumed_by_lease = 0
        self._expiring: set[asyncio.Task[bool]] = set()

    def __len__(self) -> int:
        return len(self._paused)

    async def _target(
        self, fault_id: str, selector: ProcessSelector, lease: Duration
    ) -> tuple[TargetProcess, dict[str, Any] | None]:
        """The selected process, and the renewal's answer when ``fault_id`` already holds it."""
        if not _ID.fullmatch(fault_id):
            raise ConfigError(f"invalid id {fault_id!r}: letters, digits and ._:- only")
        if not lease.seconds > 0:
            raise ConfigError("the lease must be positive")
        target = await asyncio.to_thread(resolve_process, selector)  # a process scan
        current = self._paused.get(fault_id)
        if current is not None:
            if current.target != target:
                raise ConfigError(f"id {fault_id!r} already holds another process")
            return target, self.renew(fault_id, lease)
        return target, None

    def _hold(self, fault_id: str, target: TargetProcess, lease: Duration) -> _Paused:
        expires = self._loop.time() + lease.seconds
        handle = self._loop.call_at(expires, self._expire, fault_id)
        entry = self._paused[fault_id] = _Paused(fault_id, target, lease, expires, handle)
        return entry

    async def confine(
        self, fault_id: str, selector: ProcessSelector, lease: Duration, limits: Limits
    ) -> dict[str, Any]:
        """Move the selected process into a cgroup of ours with ``limits`` for ``lease``;
        RunError when there is no single process, or the kernel refuses."""
        target, renewed = await self._target(fault_id, selector, lease)
        if renewed is not None:
            return renewed
        if target.alive() is None:
            raise RunError(f"{selector.describe()} exited before it could be confined")
        try:
            confinement = await asyncio.to_thread(confine, target.pid, fault_id, limits)
        except OSError as exc:
            raise RunError(f"cannot confine pid {target.pid}: {exc.strerror or exc}") from None
        if self._guardian is not None:  # from here on, the agent's death releases it
            self._guardian.confine(fault_id, confinement)
        entry = self._hold(fault_id, target, lease)
        entry.confinement = confinement
        entry.stopped = in_place(confinement)["confined"]
        return entry.to_dict(self._loop.time())

    async def partition(
        self,
        fault_id: str,
        selector: ProcessSelector,
        peer: ProcessSelector,
        lease: Duration,
        *,
        direction: _netns.Direction = "both",
        mode: _netns.Mode = "silent",
    ) -> dict[str, Any]:
        """Cut the network between the selected process's namespace and the peer's for
        ``lease``; RunError when either is not a single process or they cannot be cut."""
        target, renewed = await self._target(fault_id, selector, lease)
        if renewed is not None:
            return renewed
        partition = await asyncio.to_thread(plan_partition, target, peer, direction, mode)
        if self._guardian is not None:  # told first: from here on, the agent's death undoes it
            self._guardian.partition(fault_id, partition)
        try:
            await asyncio.to_thread(_netns.apply, partition)
        except OSError as exc:
            if self._guardian is not None:
                self._guardian.release(fault_id)
            raise RunError(f"cannot partition: {exc}") from None
        entry = self._hold(fault_id, target, lease)
        entry.partition = partition
        entry.stopped = await asyncio.to_thread(_netns.in_place, partition)
        return entry.to_dict(self._loop.time())

    async def take_gpu_memory(
        self,
        fault_id: str,
        selector: ProcessSelector,
        lease: Duration,
        *,
        device: int | None = None,
        leave_free: int | None = None,
        leave_free_share: float | None = None,
    ) -> dict[str, Any]:
        """Take device memory on the selected process's GPU (or GPU ``device``) until only
        ``leave_free`` bytes (or that share of it) stay free, for ``lease``; RunError when there
        is no GPU, no driver, or the memory cannot be taken."""
        target, renewed = await self._target(fault_id, selector, lease)
        if renewed is not None:
            return renewed
        pressure = await asyncio.to_thread(
            _take_gpu_memory, target, device, leave_free, leave_free_share
        )
        entry = self._hold(fault_id, target, lease)
        entry.gpu = pressure
        entry.stopped = await asyncio.to_thread(_gpu.in_place, pressure)
        return entry.to_dict(self._loop.time())

    async def pause(
        self, fault_id: str, selector: ProcessSelector, lease: Duration
    ) -> dict[str, Any]:
        """Stop the selected process for ``lease``; an active id is renewed if it names the
        same process. RunError when there is no single process to stop. The answer's
        ``confirmed`` says whether the kernel showed it stopped within 0.2 s."""
        target, renewed = await self._target(fault_id, selector, lease)
        if renewed is not None:
            return renewed
        proc = target.alive()
        if proc is None:
            raise RunError(f"{selector.describe()} exited before it could be paused")
        if self._guardian is not None:  # told first: from here on, the agent's death resumes it
            self._guardian.hold(fault_id, target.pid, target.created)
        proc.suspend()
        entry = self._hold(fault_id, target, lease)
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
        """Undo at once (SIGCONT, out of our cgroup, rules deleted, GPU memory freed) and
        forget; True when what it acted on was still there."""
        entry = self._forget(fault_id)
        return self._undone(entry, _undo(entry))

    async def resume_confirmed(self, fault_id: str) -> bool:
        """:meth:`resume`, answered once the kernel shows it undone (a paused process running
        again within 0.2 s); the slower undoings (``ip``, a holder's exit) run in a thread."""
        return await self._finish(self._forget(fault_id))

    async def _finish(self, entry: _Paused) -> bool:
        if entry.partition is not None or entry.gpu is not None:
            return self._undone(entry, await asyncio.to_thread(_undo, entry))
        proc = entry.target.alive()
        resumed = self._undone(entry, _undo(entry))
        if resumed and proc is not None and entry.confinement is None:
            await _shown(proc, stopped=False)
        return resumed

    async def settle(self) -> None:
        """Wait for the undoings that lapsed leases started."""
        await asyncio.gather(*self._expiring, return_exceptions=True)

    def resume_all(self) -> int:
        return sum(self.resume(fault_id) for fault_id in list(self._paused))

    def list(self) -> list[dict[str, Any]]:
        now = self._loop.time()
        return [p.to_dict(now) for p in self._paused.values()]

    def _forget(self, fault_id: str) -> _Paused:
        entry = self._get(fault_id)
        entry.handle.cancel()
        del self._paused[fault_id]
        return entry

    def _undone(self, entry: _Paused, undone: bool) -> bool:
        """Tell the guardian it need not undo it any more (only now: had the agent died while
        undoing, the guardian would have finished the job)."""
        if self._guardian is not None:
            self._guardian.release(entry.id)
        return undone

    def _get(self, fault_id: str) -> _Paused:
        try:
            return self._paused[fault_id]
        except KeyError:
            raise UnknownPauseError(f"no process fault with id {fault_id!r}") from None

    def _expire(self, fault_id: str) -> None:
        if fault_id in self._paused:
            self.resumed_by_lease += 1
            task = self._loop.create_task(self._finish(self._forget(fault_id)))
            self._expiring.add(task)  # held until done (the loop keeps only a weak reference)
            task.add_done_callback(self._expiring.discard)


def _undo(entry: _Paused) -> bool:
    """Undo the fault an entry holds (may block: ``ip``, a holder's exit); True when what it
    acted on was still there."""
    if entry.confinement is not None:
        return release(entry.confinement)
    if entry.partition is not None:
        return _netns.release(entry.partition)
    if entry.gpu is not None:
        return _gpu.release(entry.gpu)
    proc = entry.target.alive()
    if proc is not None:
        proc.resume()
    return proc is not None


def plan_partition(
    target: TargetProcess,
    peer: ProcessSelector,
    direction: _netns.Direction,
    mode: _netns.Mode,
) -> _netns.Partition:
    """The rules that cut ``target`` from the process ``peer`` selects; RunError when that is
    not one live process, or the two cannot be cut (one namespace, the host's, no address)."""
    why = _netns.unsupported()
    if why is not None:
        raise RunError(why)
    other = resolve_process(peer)
    try:
        return _netns.plan(_netns.netns_of(target.pid), _netns.netns_of(other.pid), direction, mode)
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot partition pid {target.pid} from pid {other.pid}: {exc}") from None


def choose_gpu(target: TargetProcess, device: int | None) -> _gpu.Gpu:
    """The GPU a ``gpu_memory`` fault on ``target`` acts on; RunError when there is none."""
    why = _gpu.unsupported()
    if why is not None:
        raise RunError(why)
    try:
        return _gpu.choose(target.pid, device)
    except ValueError as exc:
        raise RunError(str(exc)) from None


def _take_gpu_memory(
    target: TargetProcess,
    device: int | None,
    leave_free: int | None,
    leave_free_share: float | None,
) -> _gpu.Pressure:
    gpu = choose_gpu(target, device)
    leave = leave_free if leave_free is not None else int((leave_free_share or 0.0) * gpu.total)
    try:
        return _gpu.occupy(gpu, leave)
    except OSError as exc:
        raise RunError(str(exc)) from None


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
