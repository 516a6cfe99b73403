"""The HTML report: one self-contained file to read after a run or a sweep.

Rebuilt from the journal alone, like every report. The page holds its stylesheet and its charts
(inline SVG drawn by ``_svg``); it loads nothing and runs no script — its Content-Security-Policy
forbids both — and every text that comes from the journal (titles, check names, reasons) is
escaped. Each section is a small function of the run; ``render_html`` puts them in order.
The data over time comes from ``_timeline``, the sweep's section from ``_sweeps``, the page
around it all (stylesheet, policy) from ``_page``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from mlchaos.report import _svg
from mlchaos.report._page import page, when
from mlchaos.report._runs import (
    RunJournal,
    check_text,
    ms,
    pct,
    point_label,
    rebuild_store,
    verdict_word,
)
from mlchaos.report._sweeps import sweep_banner, sweep_section
from mlchaos.report._timeline import Events, Timeline, events, latency_ecdf, origin, timeline

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import numpy as np
    import numpy.typing as npt

    from mlchaos.observations import ObservationStore

__all__ = ["render_html"]

_TIME_AXIS = "seconds since the first request"


def render_html(runs: Sequence[RunJournal], *, sweep: Mapping[str, Any] | None = None) -> str:
    """One run's report or, given several runs and their ``sweep``, the sweep's report with
    every run's sections under it."""
    if not runs:
        raise ValueError("a report needs at least one run")
    if len(runs) == 1:
        run = runs[0]
        body = _run_header(run, "h1") + _run_body(run, sweep=sweep, level=2, prefix="")
        return page(run.summary.title, body)
    title = runs[0].summary.title
    parts = [f"<header><h1>{escape(title)}</h1>"]
    if sweep is not None:
        values = ", ".join(str(p.get("value")) for p in sweep.get("points", []))
        parts.append(
            f'<p class="meta">sweep over {escape(str(sweep.get("field")))}: '
            f"{escape(values)} · {len(runs)} runs</p>"
        )
    parts.append("</header>")
    if sweep is not None:
        parts.append(sweep_banner(sweep))
        parts.append(sweep_section(sweep, current=None, level=2, prefix=""))
    for i, run in enumerate(runs):
        label = point_label(sweep, run.name) or run.name or f"run {i + 1}"
        anchor = re.sub(r"[^A-Za-z0-9_-]+", "_", run.name or str(i))
        parts.append(f'<article class="run" id="run-{escape(anchor)}">')
        parts.append(
            f"<h2>{escape(label)} — "
            f'<span class="word v-{escape(run.summary.verdict)}">'
            f"{escape(verdict_word(run.summary.verdict))}</span></h2>"
        )
        parts.append(_run_meta(run))
        parts.append(_run_body(run, sweep=None, level=3, prefix=f"{run.name or i}/"))
        parts.append("</article>")
    return page(f"{title} (sweep)", "\n".join(parts))


# ------------------------------------------------------------------ one run


@dataclass
class _Run:
    """A run prepared for drawing: its observations, time zero and events."""

    run: RunJournal
    store: ObservationStore
    t0: float
    events: Events
    level: int
    prefix: str

    def h(self, text: str) -> str:
        return f"<h{self.level}>{escape(text)}</h{self.level}>"


def _run_header(run: RunJournal, tag: str) -> str:
    return (
        f"<header><{tag}>{escape(run.summary.title)}</{tag}>"
        + _run_meta(run)
        + (
            f'<p class="desc">{escape(str(run.spec["description"]))}</p>'
            if run.spec.get("description")
            else ""
        )
        + "</header>"
    )


def _run_meta(run: RunJournal) -> str:
    s, header = run.summary, run.records[0]
    return (
        f'<p class="meta">run {escape(s.run_id)} · started {escape(when(run.started))} · '
        f"{run.ended - run.started:.1f} s · {s.observations} requests observed · "
        f"mlchaos {escape(str(header.get('version', '?')))}</p>"
    )


def _run_body(run: RunJournal, *, sweep: Mapping[str, Any] | None, level: int, prefix: str) -> str:
    store = rebuild_store(run.records)
    t0 = origin(run.records, store)
    r = _Run(run, store, t0, events(run.records, t0), level, prefix)
    parts = [
        _banner(r),
        _hypothesis(r),
        _arms(r),
        _errors(r),
        _timelines(r),
        _latency(r),
        _staleness(r),
        "" if sweep is None else sweep_section(sweep, current=run.name, level=level, prefix=""),
        _recovery(r),
        _alerts(r),
        _event_log(r),
    ]
    return "\n".join(p for p in parts if p)


def _banner(r: _Run) -> str:
    s = r.run.summary
    rows: list[tuple[str, str]] = []
    if s.verdict == "held":
        rows.append(("hypothesis", "every check held"))
    failing = [c["name"] for c in s.checks if c["status"] != "held"]
    if failing:
        rows.append(
            (
                "hypothesis",
                f"{len(failing)} of {len(s.checks)} checks did not hold: " + "; ".join(failing),
            )
        )
    if s.abort_reason:
        rows.append(("aborted", s.abort_reason))
    if s.error:
        rows.append(("error", s.error))
    if s.kill_switch_ms is not None:
        rows.append(
            ("kill switch", f"faults removed {s.kill_switch_ms:.1f} ms after the guardrail tripped")
        )
    if s.recovered is not None:
        rows.append(("recovery", _recovery_text(s.recovered, s.recovery_seconds)))
        rows += [("did not hold", failing) for failing in s.recovery_failing]
    rows += [("fault never fired" if r["never_fired"] else "fault", r["text"]) for r in s.reach]
    rows += [("journal mismatch", m) for m in s.mismatches]
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    return (
        f'<section class="banner v-{escape(s.verdict)}">'
        f'<div class="word">{escape(verdict_word(s.verdict))}</div><dl>{items}</dl></section>'
    )


def _recovery_text(recovered: bool, seconds: float | None) -> str:
    if not recovered:
        return "the steady state did not return within the recovery deadline"
    took = "" if seconds is None else f" {seconds:.2f} s after rollback began"
    return f"the steady state held again{took}"


def _hypothesis(r: _Run) -> str:
    s = r.run.summary
    if not s.checks:
        return r.h("Hypothesis") + "<p>No check was judged: the run reached no verdict on it.</p>"
    rows = []
    for c in map(check_text, s.checks):
        rows.append(
            f"<tr><td>{escape(c.name)}</td>"
            f'<td><span class="st st-{escape(c.status)}">{escape(c.status)}</span></td>'
            f'<td class="num">{escape(c.value if c.interval else c.note or "-")}</td>'
            f'<td class="num">{escape(c.interval)}</td><td>{escape(c.bound)}</td>'
            f'<td class="num">{escape(c.n)}</td></tr>'
        )
    return (
        r.h("Hypothesis")
        + f'<p class="note">Each estimate with its {escape(_confidence(r))} interval; a check '
        "holds only when its whole interval is inside the bound.</p>"
        + "<table><thead><tr><th>check</th><th>status</th><th>estimate</th><th>interval</th>"
        "<th>bound</th><th>n</th></tr></thead><tbody>" + "\n".join(rows) + "</tbody></table>"
    )


def _confidence(r: _Run) -> str:
    return str((r.run.spec.get("analysis") or {}).get("confidence", "95%"))


def _models(a: Mapping[str, Any]) -> str:
    shares = (a.get("model_share") or {}).items()
    text = ", ".join(
        f"{m} {100 * e['value']:.0f}%" for m, e in shares if e and e.get("value") is not None
    )
    return text or "-"


# The per-arm table's columns; one that no arm has a value for is left out.
_ARM_COLUMNS: tuple[tuple[str, Callable[[Mapping[str, Any]], str]], ...] = (
    ("requests", lambda a: str(a.get("requests", 0))),
    ("error rate [CI]", lambda a: pct(a.get("errors"))),
    ("p50", lambda a: ms((a.get("latency") or {}).get("p50"), interval=False)),
    ("p99 [CI]", lambda a: ms((a.get("latency") or {}).get("p99"))),
    ("accuracy [CI]", lambda a: pct(a.get("accuracy"))),
    ("degraded [CI]", lambda a: pct(a.get("silent"))),
    ("models", _models),
)


def _arms(r: _Run) -> str:
    s = r.run.summary
    arms = {name: a for name, a in s.arms.items() if a.get("requests")}
    if not arms:
        return ""
    cells = {name: [cell(a) for _, cell in _ARM_COLUMNS] for name, a in arms.items()}
    keep = [i for i in range(len(_ARM_COLUMNS)) if any(c[i] != "-" for c in cells.values())]
    head = "".join(f"<th>{escape(_ARM_COLUMNS[i][0])}</th>" for i in keep)
    rows = [
        f"<tr><td>{escape(name)}</td>"
        + "".join(f"<td class='num'>{escape(row[i])}</td>" for i in keep)
        + "</tr>"
        for name, row in cells.items()
    ]
    window = (r.run.spec.get("analysis") or {}).get("window", "faults")
    judged = "while faults were active" if window == "faults" else "over the whole run"
    q = s.quality.get("auc") or {}
    auc = "; ".join(
        f"{arm} {e['value']:.3f}" for arm, e in q.items() if e and e.get("value") is not None
    )
    return (
        r.h("Per arm")
        + f'<p class="note">Requests sent {judged}, with {escape(_confidence(r))} intervals.</p>'
        + f"<table><thead><tr><th>arm</th>{head}</tr></thead><tbody>"
        + "\n".join(rows)
        + "</tbody></table>"
        + (f'<p class="note">AUC: {escape(auc)}</p>' if auc else "")
    )


def _errors(r: _Run) -> str:
    """Each arm's failures by cause over the whole run, with the sample answers kept."""
    rows = [
        f"<tr><td>{escape(arm)}</td><td>{escape(e['cause'])}</td><td>{e['count']}</td><td>"
        + "".join(f'<div class="sample">{escape(x)}</div>' for x in e["samples"])
        + "</td></tr>"
        for arm, causes in r.run.summary.errors.items()
        for e in causes
    ]
    if not rows:
        return ""
    return (
        r.h("Errors by cause")
        + '<p class="note">Every failed request of the run, by why it failed; sample answers '
        "as the traffic received them (truncated).</p>"
        + "<table><thead><tr><th>arm</th><th>cause</th><th>requests</th><th>sample answers</th>"
        + "</tr></thead><tbody>"
        + "\n".join(rows)
        + "</tbody></table>"
    )


def _bands(ev: Events) -> list[_svg.Band]:
    """Fault windows; faults injected and removed together share one band."""
    merged: list[tuple[float, float, list[str]]] = []
    for x0, x1, label in sorted(ev.faults):
        for m in merged:
            if abs(m[0] - x0) < 0.25 and abs(m[1] - x1) < 0.25:
                m[2].append(label)
                break
        else:
            merged.append((x0, x1, [label]))
    return [_svg.Band(x0, x1, "fault: " + ", ".join(labels)) for x0, x1, labels in merged]


def _marks(ev: Events) -> list[_svg.Mark]:
    marks = [_svg.Mark(t, text, status) for t, status, text in ev.guardrails]
    marks += [_svg.Mark(t, text, "alert") for t, text in ev.alerts]
    if ev.abort is not None:
        marks.append(_svg.Mark(ev.abort[0], ev.abort[1], "abort"))
    return marks


def _judged_mask(r: _Run) -> npt.NDArray[np.bool_] | None:
    """The requests the latency checks judged: inside a fault window (the same windows as the
    verdict's), less their ``settle`` after each injection."""
    from pydantic import TypeAdapter  # noqa: PLC0415

    from mlchaos.analysis import fault_window_mask  # noqa: PLC0415
    from mlchaos.journal import fault_windows, judged_horizon, judged_windows  # noqa: PLC0415
    from mlchaos.units import Duration  # noqa: PLC0415

    window = (r.run.spec.get("analysis") or {}).get("window", "faults")
    if window != "faults" or not r.events.faults:
        return None
    latency = [
        c
        for c in r.run.spec.get("hypothesis") or []
        if str(c.get("metric", "")).startswith("latency")
    ]
    parse = TypeAdapter(Duration).validate_python
    settle = max((parse(c.get("settle") or "0s").seconds for c in latency), default=0.0)
    timeout = parse((r.run.spec.get("traffic") or {}).get("timeout") or "0s").seconds
    records = r.run.records
    horizon = judged_horizon(records[0], timeout)
    traffic_end = next((float(x["t"]) for x in records if x["kind"] == "traffic"), None)
    windows = judged_windows(fault_windows(records, records[-1]["t"]), horizon, traffic_end)
    return fault_window_mask(r.store, [(lo + settle, hi) for lo, hi in windows], horizon)


def _threshold(r: _Run) -> float | None:
    value = (r.run.spec.get("analysis") or {}).get("threshold")
    return None if value is None else float(value)


def _timelines(r: _Run) -> str:
    if not len(r.store):
        return r.h("Timeline") + "<p>No request was observed.</p>"
    span = max(float(r.store.column("start").max()) - r.t0, r.events.span(), 1.0)
    tl = timeline(r.store, r.t0, span, _threshold(r))
    bands, marks = _bands(r.events), _marks(r.events)
    x = _svg.Axis(_TIME_AXIS, low=0.0)
    charts = []
    for metric, title, axis in _timeline_charts(tl):
        series = [
            _svg.Series(arm, f"s-{arm}", list(zip(tl.x, values, strict=True)))
            for arm, values in tl.metrics.get(metric, {}).items()
        ]
        if series:
            charts.append(
                _svg.line_chart(
                    f"{r.prefix}timeline-{metric}", title, x, axis, series, bands=bands, marks=marks
                )
            )
    return (
        r.h("Timeline")
        + f'<p class="note">Per arm in {tl.width:g} s bins. Shaded: a fault was active. '
        '<span class="key mark-violated">red line</span>: a guardrail tripped; '
        '<span class="key mark-unsure">amber</span>: a guardrail unsure; '
        '<span class="key mark-held">green</span>: back to held; '
        '<span class="key mark-abort">dashed red</span>: the abort; '
        '<span class="key mark-alert">violet</span>: an alert. Hover a line for details.</p>'
        + '<div class="charts">'
        + "\n".join(charts)
        + "</div>"
    )


def _timeline_charts(tl: Timeline) -> list[tuple[str, str, _svg.Axis]]:
    out = [
        ("rate", "Request rate", _svg.Axis("requests/s", low=0.0)),
        ("errors", "Error rate", _svg.Axis("error rate (%)", fmt=_svg.percent, low=0.0)),
        ("p99", "p99 latency", _latency_axis(tl.metrics.get("p99", {}), "p99 latency (ms)")),
    ]
    if tl.majority is not None:
        out.append(
            (
                "fallback",
                f"Fallback share: answers from other models than '{tl.majority}'",
                _svg.Axis("share of answers (%)", fmt=_svg.percent, low=0.0, high=100.0),
            )
        )
    accuracy = _svg.Axis("accuracy (%)", fmt=_svg.percent)
    out.append(("accuracy", "Accuracy (labelled answers)", accuracy))
    return out


def _latency_axis(per_arm: Mapping[str, Sequence[float | None]], label: str) -> _svg.Axis:
    values = [v for vs in per_arm.values() for v in vs if v is not None and v > 0]
    wide = bool(values) and max(values) / min(values) > 100
    return _svg.Axis(label, fmt=_svg.millis, low=None if wide else 0.0, log=wide)


def _latency(r: _Run) -> str:
    mask = _judged_mask(r)
    ecdf = latency_ecdf(r.store, mask)
    if not ecdf:
        return ""
    values = [x for pts in ecdf.values() for x, _ in pts if x > 0]
    wide = bool(values) and max(values) / min(values) > 50
    chart = _svg.line_chart(
        f"{r.prefix}latency-ecdf",
        "Latency distribution per arm (ECDF)"
        + (", while faults were active" if mask is not None else ", whole run"),
        _svg.Axis(
            "latency (ms)" + (", log scale" if wide else ""),
            fmt=_svg.millis,
            log=wide,
            low=None if wide else 0.0,
        ),
        _svg.Axis("answers at or below (%)", fmt=_svg.percent, low=0.0, high=100.0),
        [_svg.Series(arm, f"s-{arm}", pts) for arm, pts in ecdf.items()],
        hlines=[_svg.HLine(99.0, "p99"), _svg.HLine(50.0, "p50")],
    )
    return r.h("Latency distribution") + f'<div class="charts">{chart}</div>'


def _staleness(r: _Run) -> str:
    s = r.run.summary
    if len(s.staleness) < 2:
        return ""
    minimum = _accuracy_minimum(r.run.spec)
    cats, points = [], []
    for i, p in enumerate(s.staleness):
        cats.append(f"{p['low']:g}-{p['high']:g}s" if p["high"] is not None else f">{p['low']:g}s")
        e = p["estimate"]
        status = "point"
        if minimum is not None and e.get("low") is not None and e.get("high") is not None:
            held, broke = e["low"] * 100 >= minimum, e["high"] * 100 < minimum
            status = "held" if held else "violated" if broke else "unsure"
        points.append(
            _svg.Interval(
                i,
                _scaled(e.get("value"), 100),
                _scaled(e.get("low"), 100),
                _scaled(e.get("high"), 100),
                status,
            )
        )
    chart = _svg.interval_chart(
        f"{r.prefix}staleness",
        "Accuracy against the age of the features used (every successful answer)",
        cats,
        "feature age",
        _svg.Axis("accuracy (%)", fmt=_svg.percent),
        [_svg.IntervalSeries("accuracy", "s-estimate", points)],
        hlines=[] if minimum is None else [_svg.HLine(minimum, f"minimum {minimum:g}%")],
    )
    tolerable = (
        f"<p>Maximum tolerable staleness: {s.max_tolerable_staleness:g} s (accuracy's interval "
        "meets the hypothesis' minimum up to this age).</p>"
        if s.max_tolerable_staleness is not None
        else ""
    )
    return r.h("Accuracy vs feature age") + f'<div class="charts">{chart}</div>' + tolerable


def _accuracy_minimum(spec: Mapping[str, Any]) -> float | None:
    for c in spec.get("hypothesis") or []:
        if c.get("metric") == "accuracy" and c.get("relative_to") is None and c.get("min"):
            return _number(str(c["min"]))
    return None


def _recovery(r: _Run) -> str:
    s = r.run.summary
    rows = "".join(
        f"<tr><td>{escape(str(p['phase']))}</td>"
        f"<td class='{'ok' if p.get('ok') else 'bad'}'>{'ok' if p.get('ok') else 'failed'}</td>"
        f"<td class='num'>{_seconds(p.get('seconds'))}</td></tr>"
        for p in s.phases
    )
    text = (
        "<p>Recovery was not reached.</p>"
        if s.recovered is None
        else f"<p>Recovery: {escape(_recovery_text(s.recovered, s.recovery_seconds))}.</p>"
    )
    table = (
        "<table><thead><tr><th>phase</th><th></th><th>took</th></tr></thead><tbody>"
        + rows
        + "</tbody></table>"
        if rows
        else ""
    )
    return r.h("Recovery and phases") + text + table


def _alerts(r: _Run) -> str:
    """Alerts the run watched (journal records of kind ``alert``): when each fired and
    resolved, and how long detection and resolution took. Omitted when there are none."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for a in r.run.kind("alert"):
        latest[(str(a.get("name")), str(a.get("fired_at")))] = a
    if not latest:
        return ""
    rows = []
    for a in latest.values():
        rows.append(
            f"<tr><td>{escape(str(a.get('name')))}</td>"
            f"<td>{escape(str(a.get('status') or '-'))}</td>"
            f"<td class='num'>{escape(_moment(a.get('fired_at'), r.t0))}</td>"
            f"<td class='num'>{escape(_moment(a.get('resolved_at'), r.t0))}</td>"
            f"<td class='num'>{_seconds(a.get('time_to_detect_s'))}</td>"
            f"<td class='num'>{_seconds(a.get('time_to_resolve_s'))}</td></tr>"
        )
    return (
        r.h("Alerts")
        + "<table><thead><tr><th>alert</th><th>status</th><th>fired</th><th>resolved</th>"
        "<th>time to detect</th><th>time to resolve</th></tr></thead><tbody>"
        + "\n".join(rows)
        + "</tbody></table>"
    )


def _event_log(r: _Run) -> str:
    lines = []
    for rec in r.run.records:
        text = _event_text(rec)
        if text:
            at = float(rec.get("t", r.t0)) - r.t0
            lines.append(f"<tr><td class='num'>{at:+.3f} s</td><td>{escape(text)}</td></tr>")
    if not lines:
        return ""
    return (
        f"<details><summary>Events ({len(lines)}), seconds from the first request</summary>"
        "<table><tbody>" + "\n".join(lines) + "</tbody></table></details>"
    )


def _event_text(rec: Mapping[str, Any]) -> str:
    kind = rec.get("kind")
    if kind == "phase":
        return f"phase {rec.get('phase')} {rec.get('event')}" + (
            f": {rec['error']}" if rec.get("error") else ""
        )
    if kind == "fault":
        f = rec.get("fault") or {}
        what = f" {f.get('type')} on {rec.get('target')}" if f else ""
        extra = f" ok={rec['ok']}" if "ok" in rec else ""
        return f"fault {rec.get('index')} {rec.get('event')}{what}{extra}" + (
            f": {rec['error']}" if rec.get("error") else ""
        )
    if kind == "guardrail":
        return f"guardrail '{rec.get('name')}' {rec.get('status')}: {rec.get('detail')}"
    if kind == "abort":
        return f"abort: {rec.get('reason')}"
    if kind == "kill_switch":
        return f"kill switch: faults removed {rec.get('trip_to_removed_ms'):.1f} ms after the trip"
    if kind == "rollback_action":
        return f"rollback action {rec.get('name')}: {'ok' if rec.get('ok') else 'FAILED'}"
    if kind == "recovery":
        return f"recovery: recovered={rec.get('recovered')} seconds={rec.get('seconds')}"
    if kind == "alert":
        return f"alert '{rec.get('name')}' {rec.get('status')}"
    if kind == "verdict":
        return f"verdict: {rec.get('verdict')}"
    return ""


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def _number(text: str) -> float | None:
    match = re.match(r"\s*(-?\d+(?:\.\d+)?)", text)
    return None if match is None else float(match[1])


def _seconds(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        return "-"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def _moment(value: Any, t0: float) -> str:
    """A time from a record: epoch seconds as an offset from the first request, else as is."""
    if value is None:
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value - t0:+.1f} s ({when(float(value))})"
    return str(value)
