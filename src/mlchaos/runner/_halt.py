"""``mlchaos halt``: stop every running experiment at once and remove all their faults.

Each registered runner gets SIGTERM (it rolls back as on Ctrl-C); every proxy a run uses is
cleared through its control API at once, and the run's pauses are removed from its agents, so
faults go even if a runner is stuck; entries of runners that no longer exist (or whose pid now
belongs to another process) are dropped without a signal. With ``disable``, the switch is set
first, so no new run can start while the halt is under way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass, field

from mlchaos.errors import MlchaosError
from mlchaos.safety._registry import Registry, running

__all__ = ["HaltReport", "halt"]


@dataclass
class HaltReport:
    stopped: list[str] = field(default_factory=list)  # run ids that ended on our SIGTERM
    stale: list[str] = field(default_factory=list)  # entries of runners already gone: dropped
    still_running: list[str] = field(default_factory=list)
    faults_cleared: int = 0
    unreachable: list[str] = field(default_factory=list)  # control APIs that did not answer


async def halt(registry: Registry, *, disable: str | None = None, wait: float = 20.0) -> HaltReport:
    """Stop every registered run, clear their proxies, wait up to ``wait`` s for them to end."""
    from mlchaos.proxy import ControlClient  # noqa: PLC0415

    if disable is not None:
        registry.disable(disable)
    report = HaltReport()
    pending = {}
    for entry in registry.runs():
        run_id, pid = str(entry.get("run_id")), int(entry.get("pid", 0))
        if pid == os.getpid():
            pass  # this process is not a runner to stop; its proxies are still cleared
        elif running(entry) and _terminate(pid):
            pending[run_id] = entry
        else:
            registry.unregister(run_id)  # the runner is gone; its leases end its faults
            report.stale.append(run_id)
        for proxy in entry.get("proxies", []):
            try:
                async with ControlClient(proxy["control"], proxy["token"], timeout=3.0) as c:
                    report.faults_cleared += await c.clear()
            except MlchaosError:
                report.unreachable.append(proxy["control"])
        for agent in entry.get("agents", []):
            try:
                report.faults_cleared += await _clear_agent(agent, run_id)
            except MlchaosError:
                report.unreachable.append(agent["control"])
    deadline = time.monotonic() + wait
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        listed = {str(e.get("run_id")) for e in registry.runs()}
        for run_id in [r for r in pending if r not in listed or not running(pending[r])]:
            registry.unregister(run_id)
            report.stopped.append(run_id)
            del pending[run_id]
    report.still_running = sorted(pending)
    return report


def _terminate(pid: int) -> bool:
    """SIGTERM to a runner; False when it is already gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


async def _clear_agent(agent: dict[str, str], run_id: str) -> int:
    """Resume the processes this run paused through ``agent``; how many."""
    from mlchaos.agent import AgentClient  # noqa: PLC0415

    async with AgentClient(agent["control"], agent["token"], timeout=3.0) as client:
        mine = [p["id"] for p in await client.paused() if str(p["id"]).startswith(f"{run_id}-")]
        for fault_id in mine:
            await client.remove(fault_id, missing_ok=True)
    return len(mine)
