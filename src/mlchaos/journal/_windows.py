"""Fault windows: when each fault was in place, read from the fault records.

The one computation of them: the runner (for the verdict), the summary, the HTML report and
its timeline all call :func:`fault_windows` on the same records, so they cannot disagree about
which requests a check judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlchaos.arms import ArmCode

if TYPE_CHECKING:
    from mlchaos.observations import ObservationStore

__all__ = [
    "FaultReach",
    "FaultWindow",
    "fault_arms",
    "fault_reach",
    "fault_windows",
    "judged_horizon",
    "judged_windows",
]

_ARMS = {"experiment": ("experiment",), "control": ("control",)}
_ALL = ("none", "experiment", "control")
_ON_PROCESSES = frozenset({"kill", "pause"})


@dataclass(frozen=True)
class FaultWindow:
    """Fault ``index`` was in place from ``start`` to ``end`` (wall clock, seconds since the
    epoch); ``injected`` is its ``injected`` record (type, target, arm)."""

    index: int
    start: float
    end: float
    injected: Mapping[str, Any]
    removed: Mapping[str, Any] | None = None


def fault_windows(records: Iterable[Mapping[str, Any]], end: float) -> list[FaultWindow]:
    """Each injected fault's window, from its ``injected`` to its ``removed`` record; a fault
    never removed in these records is open until ``end``. A record's edge is its ``at`` (the
    time the runner saw the change), or its ``t`` in journals written before ``at`` was."""
    open_: dict[int, Mapping[str, Any]] = {}
    windows: list[FaultWindow] = []
    for r in records:
        if r.get("kind") != "fault":
            continue
        if r["event"] == "injected":
            open_[r["index"]] = r
        elif r["event"] == "removed" and r["index"] in open_:
            injected = open_.pop(r["index"])
            windows.append(FaultWindow(r["index"], _at(injected), _at(r), injected, r))
    windows += [FaultWindow(i, _at(r), end, r) for i, r in open_.items()]
    return windows


def _at(record: Mapping[str, Any]) -> float:
    at = record.get("at")
    return float(at if at is not None else record["t"])


@dataclass(frozen=True)
class FaultReach:
    """What fault ``index`` changed (``hits``, in ``unit``, over the arms it targets; None when
    it does not act on traffic or its proxy's count was lost) against the requests of those
    arms sent while it was in place."""

    index: int
    label: str
    arm: str
    hits: int | None
    unit: str
    requests: int

    @property
    def never_fired(self) -> bool:
        """It changed nothing while its arm had traffic: it tested nothing."""
        return self.hits == 0 and self.requests > 0

    def describe(self) -> str:
        arm = "all arms'" if self.arm == "all" else f"the {self.arm} arm's"
        if self.hits is None:
            return f"{self.label}: hits unknown"
        share = f" ({self.hits / self.requests:.1%} of" if self.requests else " (of"
        return (
            f"{self.label}: hit {self.hits} {self.unit}{share} {arm} {self.requests} "
            "requests in its window)"
        )


def fault_arms(arm: str) -> tuple[str, ...]:
    """The arms a fault aimed at ``arm`` (``experiment``, ``control`` or ``all``) acts on."""
    return _ARMS.get(arm, _ALL)


def fault_reach(windows: Iterable[FaultWindow], store: ObservationStore) -> list[FaultReach]:
    """Each window's fault on traffic (not a killed or paused process) against its arms'
    traffic in the window, by send time."""
    import numpy as np  # noqa: PLC0415

    start, arm = store.column("start"), store.column("arm")
    out = []
    for w in windows:
        fault = w.injected.get("fault") or {}
        if fault.get("type") in _ON_PROCESSES:
            continue
        name = str(fault.get("arm", "experiment"))
        names = fault_arms(name)
        codes = [ArmCode[n.upper()] for n in names]
        inside = (start >= w.start) & (start <= w.end) & np.isin(arm, codes)
        counts = (w.removed or {}).get("hits")
        hits = None if counts is None else sum(int(counts.get(n, 0)) for n in names)
        out.append(
            FaultReach(
                index=w.index,
                label=str(w.injected.get("label") or f"fault {w.index}"),
                arm=name,
                hits=hits,
                unit=str((w.removed or {}).get("unit") or "requests"),
                requests=int(inside.sum()),
            )
        )
    return out


def judged_horizon(header: Mapping[str, Any], timeout: float) -> float | None:
    """How the run's fault windows choose the requests they judge: by send time, less the last
    ``timeout`` of each window (journal schema 3 on); None for an older journal, judged as it
    was written, on the requests sent *and answered* inside a window."""
    return timeout if int(header.get("schema", 1)) >= 3 else None


def judged_windows(
    windows: Iterable[FaultWindow], horizon: float | None, traffic_end: float | None
) -> list[tuple[float, float]]:
    """The windows as the judged mask takes them: a fault removed only after the traffic had
    ended (every request answered or timed out) held for the whole life of every request sent
    in it, so none of its end is cut: its end moves out by the horizon the mask takes off."""
    out = []
    for w in windows:
        end = w.end
        if horizon is not None and traffic_end is not None and w.end >= traffic_end:
            end += horizon
        out.append((w.start, end))
    return out
