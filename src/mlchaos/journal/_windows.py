"""Fault windows: when each fault was in place, read from the fault records.

The one computation of them: the runner (for the verdict), the summary, the HTML report and
its timeline all call :func:`fault_windows` on the same records, so they cannot disagree about
which requests a check judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FaultWindow", "fault_windows"]


@dataclass(frozen=True)
class FaultWindow:
    """Fault ``index`` was in place from ``start`` to ``end`` (wall clock, seconds since the
    epoch); ``injected`` is its ``injected`` record (type, target, arm)."""

    index: int
    start: float
    end: float
    injected: Mapping[str, Any]


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
            windows.append(FaultWindow(r["index"], _at(injected), _at(r), injected))
    windows += [FaultWindow(i, _at(r), end, r) for i, r in open_.items()]
    return windows


def _at(record: Mapping[str, Any]) -> float:
    at = record.get("at")
    return float(at if at is not None else record["t"])
