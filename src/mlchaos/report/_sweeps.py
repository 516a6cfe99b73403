"""The sweep's part of the HTML report: each check's estimate and interval against the swept
value, with its bound, and the table of every value's verdict.

The unit of a check (a share, a time, a ratio) is read from its bound's text, as ``sweep.json``
gives estimates in the metric's own unit (fractions, seconds).
"""

from __future__ import annotations

import re
from html import escape
from typing import TYPE_CHECKING, Any

from mlchaos.report import _svg
from mlchaos.report._runs import point_index, verdict_word

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["sweep_banner", "sweep_section"]


def sweep_banner(sweep: Mapping[str, Any]) -> str:
    """The sweep's verdict and the largest value at which the hypothesis held."""
    verdict = str(sweep.get("verdict", "incomplete"))
    largest = sweep.get("largest_held")
    text = f"largest {sweep.get('field')} at which the hypothesis held: " + (
        "none" if largest is None else str(largest)
    )
    return (
        f'<section class="banner v-{escape(verdict)}"><div class="word">'
        f"{escape(verdict_word(verdict))}</div><dl><dt>sweep</dt><dd>{escape(text)}</dd></dl>"
        "</section>"
    )


def sweep_section(sweep: Mapping[str, Any], *, current: str | None, level: int, prefix: str) -> str:
    """Every check's estimate and interval against the swept value, with its bound."""
    points = list(sweep.get("points") or [])
    field = str(sweep.get("field"))
    cats = [str(p.get("value")) for p in points]
    names: list[str] = []
    for p in points:
        names += [c["name"] for c in p.get("checks", []) if c["name"] not in names]
    marks = []
    if sweep.get("largest_held") is not None and str(sweep["largest_held"]) in cats:
        marks.append(
            _svg.Mark(cats.index(str(sweep["largest_held"])), "largest value held", "largest")
        )
    here = point_index(sweep, current or "")
    if here is not None:
        marks.append(_svg.Mark(here, "this run", "current"))
    charts = []
    for k, name in enumerate(names):
        cells = [next((c for c in p.get("checks", []) if c["name"] == name), None) for p in points]
        bounds = next((str(c.get("bounds", "")) for c in cells if c), "")
        unit = _unit(bounds)
        series = [
            _svg.Interval(
                i,
                _in_unit(unit, (c.get("estimate") or {}).get("value")),
                _in_unit(unit, (c.get("estimate") or {}).get("low")),
                _in_unit(unit, (c.get("estimate") or {}).get("high")),
                str(c.get("status")),
            )
            for i, c in enumerate(cells)
            if c is not None
        ]
        charts.append(
            _svg.interval_chart(
                f"{prefix}sweep-{k}",
                f"{name} against {field}",
                cats,
                field,
                _svg.Axis(_UNIT_LABEL[unit], fmt=_UNIT_TICK[unit]),
                [_svg.IntervalSeries(name, "s-estimate", series)],
                hlines=[_svg.HLine(v, f"bound {op} {text}") for op, v, text in _bounds(bounds)],
                marks=marks,
            )
        )
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    rows = []
    for p in points:
        by_name = {c["name"]: c for c in p.get("checks", [])}
        tds = "".join(_sweep_cell(by_name.get(n)) for n in names)
        rows.append(
            f"<tr><td>{escape(str(p.get('value')))}</td>"
            f'<td><span class="st st-{escape(str(p.get("verdict")))}">'
            f"{escape(str(p.get('verdict')))}</span></td>{tds}</tr>"
        )
    h = f"h{level}"
    return (
        f"<{h}>Sweep over {escape(field)}</{h}>"
        + f"<table><thead><tr><th>{escape(field)}</th><th>verdict</th>{head}</tr></thead>"
        + "<tbody>"
        + "\n".join(rows)
        + "</tbody></table>"
        + '<div class="charts">'
        + "\n".join(charts)
        + "</div>"
    )


def _sweep_cell(check: Mapping[str, Any] | None) -> str:
    if check is None:
        return "<td>-</td>"
    est = check.get("estimate") or {}
    unit = _unit(str(check.get("bounds", "")))
    if est.get("value") is None:
        text = "-"
    else:
        low, high = est.get("low"), est.get("high")
        lo = "-inf" if low is None else _UNIT_TICK[unit](_in_unit(unit, low) or 0.0)
        hi = "inf" if high is None else _UNIT_TICK[unit](_in_unit(unit, high) or 0.0)
        text = f"{_UNIT_TICK[unit](_in_unit(unit, est['value']) or 0.0)} [{lo}, {hi}]"
    status = str(check.get("status"))
    return (
        f'<td class="num">{escape(text)} <span class="st st-{escape(status)}">'
        f"{escape(status)}</span></td>"
    )


_BOUND = re.compile(r"(<=|>=)\s*(-?\d+(?:\.\d+)?)\s*([a-zµ%]*)")


def _unit(bounds: str) -> str:
    """The unit of a check, from its bounds' text: share (%), time, ratio (x) or plain."""
    match = _BOUND.search(bounds)
    suffix = "" if match is None else match[3]
    if suffix == "%":
        return "share"
    if suffix in ("us", "µs", "ms", "s", "m", "h"):
        return "time"
    return "ratio" if suffix == "x" else "plain"


def _bounds(bounds: str) -> list[tuple[str, float, str]]:
    """Each bound as (operator, value in the chart's unit, its text)."""
    from mlchaos.units import Duration  # noqa: PLC0415

    out = []
    for op, number, suffix in _BOUND.findall(bounds):
        if suffix == "%" or suffix in ("x", ""):
            out.append((op, float(number), f"{number}{suffix}"))
        else:
            try:
                out.append((op, Duration.parse(number + suffix).ms, f"{number}{suffix}"))
            except ValueError:
                continue
    return out


def _in_unit(unit: str, value: float | None) -> float | None:
    scale = {"share": 100.0, "time": 1000.0}.get(unit, 1.0)
    return _scaled(value, scale)


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


_UNIT_LABEL = {"share": "estimate (%)", "time": "estimate (ms)", "ratio": "ratio", "plain": ""}
_UNIT_TICK = {"share": _svg.percent, "time": _svg.millis, "ratio": _svg.plain, "plain": _svg.plain}
