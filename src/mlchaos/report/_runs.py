"""What the readable reports are built from: runs read back from their journals, and the text
every format shares (a check's estimate and interval, a verdict's word).

A report covers one run, or every run of a sweep: ``read_runs`` takes a journal (and picks up
the ``sweep.json`` of the sweep it belongs to) or a sweep's directory.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlchaos.analysis import format_value
from mlchaos.errors import ConfigError
from mlchaos.journal import read_journal
from mlchaos.report._summary import Summary, summarize

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from mlchaos.observations import ObservationStore

__all__ = [
    "CheckText",
    "RunJournal",
    "check_text",
    "ms",
    "pct",
    "point_index",
    "point_label",
    "read_runs",
    "rebuild_store",
    "verdict_word",
]


@dataclass(frozen=True)
class RunJournal:
    """One run: its journal's records and the summary rebuilt from them.

    ``name`` tells the runs of a sweep apart (their directory, e.g. ``01-4s``); empty otherwise.
    """

    records: list[dict[str, Any]]
    summary: Summary
    name: str = ""

    @classmethod
    def from_records(cls, records: list[dict[str, Any]], name: str = "") -> RunJournal:
        return cls(records, summarize(records), name)

    @classmethod
    def read(cls, path: Path, name: str = "") -> RunJournal:
        return cls.from_records(read_journal(path), name)

    @property
    def started(self) -> float:
        return float(self.records[0]["t"])

    @property
    def ended(self) -> float:
        return float(self.records[-1]["t"])

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.records[0].get("spec") or {}
        return spec

    def kind(self, kind: str) -> list[dict[str, Any]]:
        """The records of one kind, in order."""
        return [r for r in self.records if r.get("kind") == kind]


def read_runs(path: Path) -> tuple[list[RunJournal], dict[str, Any] | None]:
    """The runs at ``path`` and the sweep they belong to (``sweep.json``), if any.

    ``path`` is a journal, or a directory holding ``journal.jsonl`` or a sweep's ``sweep.json``
    with one directory per value (``00-2s/journal.jsonl`` ...).
    """
    if path.is_dir():
        if (path / "sweep.json").exists():
            sweep = _read_sweep(path / "sweep.json")
            journals = sorted(path.glob("*/journal.jsonl"))
            if not journals:
                raise ConfigError(f"{path}: a sweep directory without any run's journal.jsonl")
            return [RunJournal.read(j, j.parent.name) for j in journals], sweep
        if not (path / "journal.jsonl").exists():
            raise ConfigError(f"{path}: neither a journal nor a run's or a sweep's directory")
        path /= "journal.jsonl"
    beside = path.parent.parent / "sweep.json"
    if beside.exists() and _SWEEP_POINT.match(path.parent.name):
        return [RunJournal.read(path, path.parent.name)], _read_sweep(beside)
    return [RunJournal.read(path)], None


_SWEEP_POINT = re.compile(r"^(\d{2,})-")


def _read_sweep(path: Path) -> dict[str, Any]:
    try:
        sweep = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the sweep's results: {exc}") from None
    if not isinstance(sweep, dict) or not isinstance(sweep.get("points"), list):
        raise ConfigError(f"{path}: not a sweep's results (no 'points')")
    return sweep


def rebuild_store(records: Sequence[dict[str, Any]]) -> ObservationStore:
    """Every observation of the run, from the journal's columnar batches."""
    from mlchaos.observations import ObservationStore  # noqa: PLC0415

    store = ObservationStore()
    for r in records:
        if r.get("kind") == "observations":
            store.extend_columns(r["columns"], r["models"], r.get("degradations"))
    return store


@dataclass(frozen=True)
class CheckText:
    """A check as every report shows it, in the check's own unit."""

    name: str
    status: str
    value: str  # "-" without an estimate
    interval: str  # "[low, high]", or "" without an estimate
    n: str
    bound: str
    note: str  # why there is no estimate ("3 observations (need 20)")

    @property
    def failed(self) -> bool:
        return self.status != "held"

    def estimate(self) -> str:
        """``value [low, high]``, or the note when there is no estimate."""
        return f"{self.value} {self.interval}" if self.interval else self.note or "-"


def check_text(check: dict[str, Any]) -> CheckText:
    """A check record's estimate in its unit, from the record's numbers (a record without a
    unit, as schema 1 wrote them or a check with no interval, shows its detail instead)."""
    name, status, bound = str(check["name"]), str(check["status"]), str(check.get("bounds", ""))
    est, unit = check.get("estimate"), check.get("unit")
    if not est or unit is None or est.get("value") is None:
        return CheckText(name, status, "-", "", "", bound, str(check.get("detail") or ""))
    low = "-inf" if est.get("low") is None else format_value(unit, est["low"])
    high = "inf" if est.get("high") is None else format_value(unit, est["high"])
    return CheckText(
        name, status, format_value(unit, est["value"]), f"[{low}, {high}]", str(est["n"]), bound, ""
    )


def point_index(sweep: Mapping[str, Any] | None, name: str) -> int | None:
    """Which of the sweep's points a run is, from its directory's name (``02-8s``: 2)."""
    match = _SWEEP_POINT.match(name)
    if sweep is None or match is None or int(match[1]) >= len(sweep.get("points") or []):
        return None
    return int(match[1])


def point_label(sweep: Mapping[str, Any] | None, name: str) -> str:
    """``duration = 8s`` for the run of a sweep's point; empty when it is none."""
    index = point_index(sweep, name)
    if sweep is None or index is None:
        return ""
    return f"{sweep.get('field')} = {sweep['points'][index].get('value')}"


def verdict_word(verdict: str) -> str:
    """The verdict as one word for a heading: HELD, FAILED, ABORTED, ERROR, INCOMPLETE."""
    return verdict.upper()


def pct(e: dict[str, Any] | None, *, interval: bool = True) -> str:
    """A proportion's estimate as ``12.3% [10.1, 14.8]``; ``-`` without one."""
    if not e or e.get("value") is None:
        return "-"
    lo, hi = e.get("low"), e.get("high")
    ci = ""
    if interval and lo is not None and hi is not None:
        ci = f" [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{100 * e['value']:.1f}%{ci}"


def ms(e: dict[str, Any] | None, *, interval: bool = True) -> str:
    """A latency's estimate (seconds) in milliseconds, with its interval; ``-`` without one."""
    if not e or e.get("value") is None:
        return "-"
    lo, hi = e.get("low"), e.get("high")
    text = f"{1000 * e['value']:.1f}ms"
    if interval and (lo is not None or hi is not None):
        low = "-inf" if lo is None else f"{1000 * lo:.1f}"
        high = "inf" if hi is None else f"{1000 * hi:.1f}"
        text += f" [{low}, {high}]"
    return text
