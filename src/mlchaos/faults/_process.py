"""Process faults: kill a process (a crash), or pause it through an agent under a lease.

A kill cannot be leased or undone; its optional restart command runs when the fault is removed
(or a rollback action restarts the process). A pause is held by the agent (``mlchaos agent
serve``): the agent resumes the process when the lease lapses, so a runner that dies leaves
nothing paused for longer than one lease. Both refuse, before anything is injected, a selector
that names no process, several, or mlchaos itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlchaos.errors import ControlAPIError, PreflightError, RunError
from mlchaos.process import ProcessSelector, resolve_processes

if TYPE_CHECKING:
    from mlchaos.agent import AgentClient
    from mlchaos.units import Duration

__all__ = ["AgentInjector", "Cut", "GpuTake", "KillInjector"]

_RESTART_TIMEOUT_S = 60.0


class KillInjector:
    """Send ``sig`` to the selected process; ``restart`` (argv) runs on removal."""

    def __init__(
        self, selector: ProcessSelector, sig: signal.Signals, restart: list[str] | None = None
    ) -> None:
        self.selector = selector
        self.signal = sig
        self.restart = restart
        self.killed_pids: list[int] = []

    hits: dict[str, int] | None = None  # it acts on processes, not on requests
    unit = "processes"

    @property
    def label(self) -> str:
        return f"{self.signal.name} to {self.selector.describe()}"

    async def check(self) -> None:
        """The selector names live processes mlchaos may signal (nothing is sent)."""
        try:
            await asyncio.to_thread(resolve_processes, self.selector)  # a process scan
        except RunError as exc:
            raise PreflightError(str(exc)) from None

    async def rehearse(self) -> str:
        """A kill has no traffic share: check that the selector resolves, and say which
        processes it would hit now (with ``pick``, those it may pick from)."""
        try:
            found = await asyncio.to_thread(resolve_processes, self.selector, every=True)
        except RunError as exc:
            raise PreflightError(str(exc)) from None
        names = ", ".join(f"{t.name} (pid {t.pid})" for t in found)
        some = "" if self.selector.pick is None else f"{self.selector.picked(len(found))} of "
        return (
            f"would send {self.signal.name} to {some}{names}; not sent (a kill cannot be "
            "rehearsed without effect)"
        )

    async def inject(self) -> None:
        """Signal the selected process (or each picked one)."""
        import psutil  # noqa: PLC0415

        for target in await asyncio.to_thread(resolve_processes, self.selector):
            gone = RunError(f"process {target.pid} exited before it could be killed")
            proc = target.alive()
            if proc is None:
                raise gone
            try:
                proc.send_signal(self.signal)
            except psutil.NoSuchProcess:
                raise gone from None
            self.killed_pids.append(target.pid)

    async def renew(self) -> None:
        """Nothing to renew: the kill already happened."""

    async def remove(self) -> None:
        """Run the restart command, once, if there is one and the kill happened."""
        if self.restart is None or not self.killed_pids:
            return
        self.killed_pids = []
        try:
            proc = await asyncio.create_subprocess_exec(*self.restart)
        except OSError as exc:
            raise RunError(f"cannot start {self.restart[0]!r}: {exc.strerror}") from None
        try:
            async with asyncio.timeout(_RESTART_TIMEOUT_S):
                code = await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise RunError(f"restart command still running after {_RESTART_TIMEOUT_S:g}s") from None
        if code != 0:
            raise RunError(f"restart command exited with {code}")

    async def verify_removed(self) -> bool:
        return True


@dataclass(frozen=True)
class Cut:
    """A network partition's other side and kind (``PartitionFault``)."""

    peer: ProcessSelector
    direction: str = "both"
    mode: str = "silent"


@dataclass(frozen=True)
class GpuTake:
    """How much GPU memory a ``GpuMemoryFault`` leaves free, and on which GPU."""

    device: int | None = None
    leave_free: int | None = None
    leave_free_share: float | None = None

    def describe(self) -> str:
        left = (
            f"{(self.leave_free or 0) / 2**20:g} MiB"
            if self.leave_free_share is None
            else f"{self.leave_free_share:.1%}"
        )
        where = "the GPU" if self.device is None else f"GPU {self.device}"
        return f"memory of {where} taken down to {left} free"


class AgentInjector:
    """A process fault through an agent, under the experiment's lease: a pause (SIGSTOP); with
    ``cpu`` (cores) or ``memory`` (bytes), a confinement in a cgroup with those limits; with
    ``partition``, the network cut between the process's namespace and a peer's; with ``gpu``,
    device memory taken on its GPU."""

    def __init__(
        self,
        client: AgentClient,
        selector: ProcessSelector,
        *,
        lease: Duration,
        fault_id: str,
        agent: str,
        cpu: float | None = None,
        memory: int | None = None,
        partition: Cut | None = None,
        gpu: GpuTake | None = None,
    ) -> None:
        self._client = client
        self.selector = selector
        self._lease = lease
        self.fault_id = fault_id
        self.agent = agent
        self.cpu = cpu
        self.memory = memory
        self.partition = partition
        self.gpu = gpu

    hits: dict[str, int] | None = None
    unit = "processes"

    @property
    def confining(self) -> bool:
        return self.cpu is not None or self.memory is not None

    @property
    def label(self) -> str:
        what = "pause"
        if self.cpu is not None:
            what = f"cpu limit {self.cpu:.0%} of a core"
        if self.memory is not None:
            what = f"memory limit {self.memory / 2**20:g} MiB"
        if self.gpu is not None:
            where = self.selector.describe()
            return f"{self.gpu.describe()} (used by {where}; agent {self.agent}; every arm)"
        cut = self.partition
        if cut is not None:
            ways = {"both": "both ways", "outbound": "one way, out", "inbound": "one way, in"}
            return (
                f"{cut.mode} partition ({ways[cut.direction]}) between {self.selector.describe()} "
                f"and {cut.peer.describe()} (agent {self.agent}; every arm)"
            )
        return f"{what} of {self.selector.describe()} (agent {self.agent}; every arm)"

    async def check(self) -> None:
        """The agent answers, finds exactly one process, and (for a cgroup fault) can make
        cgroups with these limits; nothing is done to the process."""
        peer = None if self.partition is None else self.partition.peer
        gpu = self.gpu
        try:
            await self._client.check(
                self.selector,
                cpu=self.cpu,
                memory=self.memory,
                peer=peer,
                gpu=gpu is not None,
                device=None if gpu is None else gpu.device,
            )
        except ControlAPIError as exc:
            raise PreflightError(f"agent '{self.agent}' cannot act: {exc}") from None

    async def rehearse(self) -> str:
        """A process fault has no traffic share: check the agent and the process, do nothing."""
        await self.check()
        return "the agent answers and finds the process; nothing done (no traffic share)"

    async def inject(self) -> None:
        """Apply it; RunError if the agent could not see it in place (then rollback undoes it,
        like any fault whose injection was attempted)."""
        if self.gpu is not None:
            answer = await self._client.take_gpu_memory(
                self.fault_id,
                self.selector,
                self._lease,
                device=self.gpu.device,
                leave_free=self.gpu.leave_free,
                leave_free_share=self.gpu.leave_free_share,
            )
            if answer.get("confirmed") is False:
                raise RunError(
                    "the agent's holder took GPU memory but NVML does not list it among the "
                    "GPU's processes: the pressure is unconfirmed"
                )
            return
        if self.partition is not None:
            cut = self.partition
            answer = await self._client.partition(
                self.fault_id,
                self.selector,
                cut.peer,
                self._lease,
                direction=cut.direction,
                mode=cut.mode,
            )
            if answer.get("confirmed") is False:
                raise RunError(
                    "the agent added the partition's routing rules but the kernel does not list "
                    "them all: the partition is unconfirmed"
                )
            return
        if self.confining:
            answer = await self._client.confine(
                self.fault_id, self.selector, self._lease, cpu=self.cpu, memory=self.memory
            )
            if answer.get("confirmed") is False:
                raise RunError(
                    f"the agent moved pid {answer.get('pid')} into a cgroup but the kernel does "
                    "not show it there: the confinement is unconfirmed"
                )
            return
        answer = await self._client.pause(self.fault_id, self.selector, self._lease)
        if answer.get("confirmed") is False:
            raise RunError(
                f"the agent sent SIGSTOP to pid {answer.get('pid')} but the kernel did not "
                "show it stopped: the pause is unconfirmed"
            )

    async def renew(self) -> None:
        await self._client.renew(self.fault_id, self._lease)

    async def remove(self) -> None:
        await self._client.remove(self.fault_id, missing_ok=True)

    async def verify_removed(self) -> bool:
        return all(f["id"] != self.fault_id for f in await self._client.paused())
