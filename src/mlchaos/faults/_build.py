"""The injector for a fault of the experiment file: the one place that knows which is which."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING

from mlchaos.faults._process import AgentInjector, Cut, GpuTake, KillInjector
from mlchaos.faults._proxy import ProxyFaultInjector

if TYPE_CHECKING:
    from mlchaos.agent import AgentClient
    from mlchaos.faults._base import Injector
    from mlchaos.proxy import ControlClient
    from mlchaos.spec import Fault
    from mlchaos.units import Duration

__all__ = ["build_injector"]


def build_injector(
    fault: Fault,
    fault_id: str,
    *,
    proxies: dict[str, ControlClient],
    agents: dict[str, AgentClient],
    base_dir: Path,
    lease: Duration,
) -> Injector:
    """A kill acts here, a process or network fault through its agent, every other fault
    through its proxy."""
    from mlchaos.spec import (  # noqa: PLC0415
        AgentFault,
        CpuFault,
        GpuMemoryFault,
        KillFault,
        MemoryFault,
        PartitionFault,
    )

    if isinstance(fault, KillFault):
        selector = fault.process.relative_to(base_dir)
        return KillInjector(selector, signal.Signals[fault.signal], fault.restart)
    if isinstance(fault, AgentFault):
        return AgentInjector(
            agents[fault.target],
            fault.process.relative_to(base_dir),
            lease=lease,
            fault_id=fault_id,
            agent=fault.target,
            cpu=fault.share.fraction if isinstance(fault, CpuFault) else None,
            memory=int(fault.limit) if isinstance(fault, MemoryFault) else None,
            partition=(
                Cut(fault.peer.relative_to(base_dir), fault.direction, fault.mode)
                if isinstance(fault, PartitionFault)
                else None
            ),
            gpu=(
                GpuTake(
                    fault.device,
                    None if fault.leave_free is None else int(fault.leave_free),
                    None if fault.leave_free_share is None else fault.leave_free_share.fraction,
                )
                if isinstance(fault, GpuMemoryFault)
                else None
            ),
        )
    return ProxyFaultInjector(
        proxies[fault.target], fault.rule(), lease=lease, fault_id=fault_id, proxy=fault.target
    )
