"""Resilience history: every run under some folders, indexed, and how each experiment fared
over time — with a regression flagged only when the intervals say it got worse.

``mlchaos history DIR...`` finds every ``journal.jsonl`` below the folders and indexes each run's
summary into a SQLite file (the journals stay the source of truth: the index keeps a journal's
size and modification time, re-reads it when either changes, drops it when it is gone, and
``--rebuild`` starts it afresh). Per experiment (runs with one title), oldest first, it shows the
verdict, the time to detect (the first expected alert) and to recover, the experiment-vs-control
error and accuracy differences with their intervals, the share of degraded answers, and what the
run cost: the requests its faults reached, over how many fault-seconds.

A run is a **regression** against the run of the same experiment before it when the difference
of their experiment-arm error rates (Newcombe's interval, newer minus older) lies wholly above 0,
or the difference of their accuracies wholly below 0 — not when a point estimate moved.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from mlchaos.errors import ConfigError

__all__ = ["HistoryRun", "index_runs", "regressions", "render_history"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    title TEXT NOT NULL,
    started REAL NOT NULL,
    row TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class HistoryRun:
    """What the history shows of one run (all plain values, JSON-ready)."""

    path: str
    run_id: str
    title: str
    started: float
    verdict: str
    detect_s: float | None
    recover_s: float | None
    errors: dict[str, Any] | None  # the experiment arm's error rate (an estimate)
    accuracy: dict[str, Any] | None  # the experiment arm's accuracy
    error_diff: dict[str, Any] | None  # experiment minus control
    accuracy_diff: dict[str, Any] | None
    degraded: dict[str, Any] | None  # share of the experiment arm's answers that were degraded
    faulted_requests: int
    fault_seconds: float
    regression: list[str] = field(default_factory=list)  # why it is worse than the run before

    @classmethod
    def from_journal(cls, path: Path) -> HistoryRun:
        from mlchaos.report._runs import RunJournal  # noqa: PLC0415

        run = RunJournal.read(path)
        s = run.summary
        experiment = s.arms.get("experiment", {})
        detect = [
            a["time_to_detect_s"]
            for a in s.alerts
            if not a.get("must_not_fire") and a.get("time_to_detect_s") is not None
        ]
        windows: dict[int, list[float]] = {}
        for f in run.kind("fault"):
            if f.get("event") in ("injected", "removed"):
                windows.setdefault(int(f["index"]), []).append(float(f["t"]))
        return cls(
            path=str(path),
            run_id=s.run_id,
            title=s.title,
            started=run.started,
            verdict=s.verdict,
            detect_s=min(detect) if detect else None,
            recover_s=s.recovery_seconds,
            errors=experiment.get("errors"),
            accuracy=experiment.get("accuracy"),
            error_diff=s.comparison.get("error_rate_diff"),
            accuracy_diff=s.comparison.get("accuracy_diff"),
            degraded=experiment.get("silent"),
            faulted_requests=sum(int(r.get("requests") or 0) for r in s.reach),
            fault_seconds=sum(max(w) - min(w) for w in windows.values() if len(w) == 2),
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def index_runs(dirs: Sequence[Path], db: Path, *, rebuild: bool = False) -> list[HistoryRun]:
    """Every run under ``dirs``, oldest first, through the SQLite index at ``db``; each run's
    ``regression`` filled against the run of its experiment before it."""
    for d in dirs:
        if not d.is_dir():
            raise ConfigError(f"{d}: not a folder")
    journals = sorted({p.resolve() for d in dirs for p in d.rglob("journal.jsonl")})
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as conn:
        if rebuild:
            conn.execute("DROP TABLE IF EXISTS runs")
        conn.execute(_SCHEMA)
        known = {
            p: (size, mtime)
            for p, size, mtime in conn.execute("SELECT path, size, mtime FROM runs")
        }
        for path in journals:
            stat = path.stat()
            if known.get(str(path)) == (stat.st_size, stat.st_mtime):
                continue
            try:
                run = HistoryRun.from_journal(path)
            except (ConfigError, ValueError, KeyError, IndexError):
                continue  # not a run's journal (or a damaged one): not history
            conn.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                (
                    str(path),
                    stat.st_size,
                    stat.st_mtime,
                    run.title,
                    run.started,
                    json.dumps(run.to_dict()),
                ),
            )
        wanted = {str(p) for p in journals}
        under = [str(d.resolve()) for d in dirs]
        for (path,) in conn.execute("SELECT path FROM runs").fetchall():
            if path not in wanted and any(path.startswith(u) for u in under):
                conn.execute("DELETE FROM runs WHERE path = ?", (path,))
        rows = conn.execute("SELECT row FROM runs ORDER BY started").fetchall()
    return regressions([HistoryRun(**json.loads(row)) for (row,) in rows])


def regressions(runs: Sequence[HistoryRun]) -> list[HistoryRun]:
    """``runs`` with each one's ``regression`` set against the run of its title before it."""
    from mlchaos.stats import proportion_difference  # noqa: PLC0415

    out: list[HistoryRun] = []
    before: dict[str, HistoryRun] = {}
    for run in runs:
        why: list[str] = []
        old = before.get(run.title)
        if old is not None:
            for key, worse, word in (
                ("errors", 1, "errors rose"),
                ("accuracy", -1, "accuracy fell"),
            ):
                a, b = getattr(old, key), getattr(run, key)
                if not (a and b and a.get("count") is not None and b.get("count") is not None):
                    continue
                if not (a["n"] and b["n"]):
                    continue
                d = proportion_difference(b["count"], b["n"], a["count"], a["n"])
                if (d.low > 0 and worse > 0) or (d.high < 0 and worse < 0):
                    why.append(
                        f"{word} by {abs(d.value) * 100:.1f} points "
                        f"[{d.low * 100:+.1f}, {d.high * 100:+.1f}] since {old.run_id}"
                    )
        out.append(HistoryRun(**{**run.to_dict(), "regression": why}))
        before[run.title] = run
    return out


def render_history(runs: Sequence[HistoryRun], fmt: str) -> str:
    """The history as ``html`` (one self-contained page), ``json`` or ``markdown``."""
    if fmt == "json":
        return json.dumps({"runs": [r.to_dict() for r in runs]}, indent=2) + "\n"
    by_title: dict[str, list[HistoryRun]] = {}
    for r in runs:
        by_title.setdefault(r.title, []).append(r)
    if fmt == "markdown":
        return _markdown(by_title)
    return _html(by_title)


_COLUMNS = (
    "when",
    "run",
    "verdict",
    "detect",
    "recover",
    "errors (exp.)",
    "error diff",
    "accuracy diff",
    "degraded",
    "cost",
    "regression",
)


def _cells(r: HistoryRun) -> list[str]:
    from mlchaos.report._page import when  # noqa: PLC0415

    return [
        when(r.started),
        r.run_id,
        r.verdict,
        _s(r.detect_s),
        _s(r.recover_s),
        _est(r.errors),
        _est(r.error_diff, signed=True),
        _est(r.accuracy_diff, signed=True),
        _est(r.degraded),
        f"{r.faulted_requests} requests over {r.fault_seconds:.1f} s",
        "; ".join(r.regression) or "—",
    ]


def _markdown(by_title: dict[str, list[HistoryRun]]) -> str:
    lines = ["# Resilience history", ""]
    for title, runs in by_title.items():
        lines += [f"## {title}", "", "| " + " | ".join(_COLUMNS) + " |"]
        lines.append("|" + "---|" * len(_COLUMNS))
        for r in runs:
            cells = [c.replace("|", "\\|") for c in _cells(r)]
            if r.regression:
                cells[-1] = f"**REGRESSION**: {cells[-1]}"
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _html(by_title: dict[str, list[HistoryRun]]) -> str:
    from mlchaos.report import _svg  # noqa: PLC0415
    from mlchaos.report._page import page  # noqa: PLC0415

    flagged = sum(bool(r.regression) for runs in by_title.values() for r in runs)
    sections = []
    for i, (title, runs) in enumerate(by_title.items()):
        points = [
            _svg.Interval(
                j,
                _pct(r.errors, "value"),
                _pct(r.errors, "low"),
                _pct(r.errors, "high"),
                "violated" if r.regression else "held",
            )
            for j, r in enumerate(runs)
        ]
        chart = _svg.interval_chart(
            f"h{i}-errors",
            "Experiment-arm error rate per run, with its interval (red: a regression)",
            [f"{j + 1}" for j in range(len(runs))],
            "run",
            _svg.Axis("error rate (%)", fmt=_svg.percent),
            [_svg.IntervalSeries("experiment arm", "s-estimate", points)],
        )
        rows = []
        for r in runs:
            cells = _cells(r)
            cls = ' class="bad"' if r.regression else ""
            cells[2] = f'<span class="word v-{escape(r.verdict)}">{escape(r.verdict)}</span>'
            rows.append(
                f"<tr{cls}>"
                + "".join(f"<td>{c if k == 2 else escape(c)}</td>" for k, c in enumerate(cells))
                + "</tr>"
            )
        sections.append(
            f"<section><h2>{escape(title)}</h2>{chart}<table><thead><tr>"
            + "".join(f"<th>{escape(c)}</th>" for c in _COLUMNS)
            + "</tr></thead><tbody>"
            + "\n".join(rows)
            + "</tbody></table></section>"
        )
    total = sum(len(runs) for runs in by_title.values())
    summary = (
        f"{total} runs of {len(by_title)} experiments; "
        + (f"{flagged} regression(s) flagged" if flagged else "no regression")
        + " (a regression: the intervals say the run was worse than the one before it)"
    )
    body = (
        f'<header><h1>Resilience history</h1><p class="meta">{escape(summary)}</p></header>'
        + "".join(sections)
    )
    return page("Resilience history", body)


def _pct(e: dict[str, Any] | None, key: str) -> float | None:
    x = None if e is None else e.get(key)
    return None if x is None else float(x) * 100


def _s(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f} s"


def _est(e: dict[str, Any] | None, *, signed: bool = False) -> str:
    if not e or e.get("value") is None:
        return "—"
    low, high = e.get("low"), e.get("high")
    sign = "+" if signed else ""
    text = f"{e['value'] * 100:{sign}.1f}%"
    if low is not None and high is not None:
        text += f" [{low * 100:{sign}.1f}, {high * 100:{sign}.1f}]"
    return text
