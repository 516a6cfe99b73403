"""Charts as inline SVG drawn in Python, for the HTML report: no script, no external resource.

Two kinds: a line chart over a numeric x axis (time bins, latency) with shaded bands and
vertical marks for events, and an interval chart (an estimate with its interval per category,
such as a swept value). Every chart is an ``<svg class="chart" data-chart=NAME>`` with a
``<title>``, a visible title and both axis labels; every text is escaped. Colours come from the
page's stylesheet through classes (``s-experiment``, ``mark-violated`` ...).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape as _escape

__all__ = [
    "Axis",
    "Band",
    "HLine",
    "Interval",
    "IntervalSeries",
    "Mark",
    "Series",
    "interval_chart",
    "line_chart",
    "millis",
    "percent",
    "plain",
]

WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 66, 18, 46, 46
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def escape(text: str) -> str:
    """Text for SVG markup: escaped, and characters no XML document may hold replaced."""
    return _CONTROL.sub("\ufffd", _escape(text))


def plain(x: float) -> str:
    """A tick label: as short as the value allows."""
    if x == 0:
        return "0"
    if abs(x) >= 1000 or abs(x) < 0.01:
        return f"{x:.3g}"
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.4g}"


def percent(x: float) -> str:
    return f"{plain(x)}%"


def millis(x: float) -> str:
    """Milliseconds as a tick label; seconds from 10 s on."""
    return f"{plain(x / 1000)}s" if x >= 10_000 else f"{plain(x)}ms"


@dataclass(frozen=True)
class Axis:
    label: str
    fmt: Callable[[float], str] = plain
    low: float | None = None  # forced ends of the axis (else from the data)
    high: float | None = None
    log: bool = False


@dataclass(frozen=True)
class Series:
    label: str
    css: str  # class suffix: s-experiment, s-control ...
    points: Sequence[tuple[float, float | None]]  # y None: no data in that bin (a gap)


@dataclass(frozen=True)
class Band:
    """A shaded stretch of x, e.g. a fault's injection to its removal."""

    x0: float
    x1: float
    label: str


@dataclass(frozen=True)
class Mark:
    """A vertical line at x, e.g. a guardrail's change of state or the abort."""

    x: float
    label: str
    kind: str  # class suffix: violated, unsure, held, abort, alert, largest


@dataclass(frozen=True)
class HLine:
    y: float
    label: str


@dataclass(frozen=True)
class Interval:
    index: int  # the category
    value: float | None
    low: float | None
    high: float | None
    status: str  # held / violated / unsure / no_data


@dataclass(frozen=True)
class IntervalSeries:
    label: str
    css: str
    points: Sequence[Interval]


class _Scale:
    def __init__(self, lo: float, hi: float, a: float, b: float, *, log: bool = False) -> None:
        self.log = log
        self.lo, self.hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
        self.a, self.b = a, b

    def __call__(self, v: float) -> float:
        x = math.log10(v) if self.log else v
        span = self.hi - self.lo or 1.0
        return self.a + (x - self.lo) / span * (self.b - self.a)


def _nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * mag:
            return m * mag
    return 10 * mag  # pragma: no cover - the loop always returns


def _domain(values: Sequence[float], axis: Axis) -> tuple[float, float, list[float]]:
    """The axis' ends and its ticks: nice round values covering the data (and forced ends)."""
    finite = [v for v in values if math.isfinite(v) and (v > 0 or not axis.log)]
    lo = axis.low if axis.low is not None else min(finite, default=0.0)
    hi = axis.high if axis.high is not None else max(finite, default=1.0)
    if axis.log:
        lo = lo if lo > 0 else min(finite, default=1.0)
        hi = max(hi, lo * 10)
        low, high = lo, hi
        lo, hi = 10.0 ** math.floor(math.log10(lo)), 10.0 ** math.ceil(math.log10(hi))
        lo, hi = lo / 10 if lo > low else lo, hi * 10 if hi < high else hi  # log10's rounding
        decades = round(math.log10(hi / lo))
        ticks = [lo * 10**i * m for i in range(decades + 1) for m in (1, 2, 5)]
        return lo, hi, [t for t in ticks if t <= hi * 1.0001]
    if hi - lo <= 1e-9 * max(1.0, abs(lo), abs(hi)):  # one value (or none): give it room
        pad = max(abs(lo), abs(hi)) * 0.1
        pad = pad if pad > 1e-9 else 1.0
        if axis.high is None:
            hi += pad
        elif axis.low is None:
            lo -= pad
    step = _nice_step(hi - lo, 5)
    if axis.low is None:
        lo = math.floor(lo / step + 1e-9) * step
    if axis.high is None:
        hi = math.ceil(hi / step - 1e-9) * step
    ticks, t = [], math.ceil(lo / step - 1e-9) * step
    while t <= hi + step * 1e-6:
        ticks.append(0.0 if abs(t) < step * 1e-9 else t)
        t += step
    return lo, hi, ticks


def _frame(name: str, title: str, legend: Sequence[tuple[str, str]]) -> list[str]:
    out = [
        f'<svg class="chart" data-chart="{escape(name)}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img">',
        f"<title>{escape(title)}</title>",
        f'<text class="ctitle" x="{LEFT}" y="18">{escape(title)}</text>',
    ]
    x = WIDTH - RIGHT
    for label, css in reversed(legend):  # right-aligned, in order
        width = 7 * len(label) + 26
        x -= width
        out.append(
            f'<g class="legend"><line class="{css}" x1="{x}" x2="{x + 16}" y1="34" y2="34"/>'
            f'<text x="{x + 20}" y="38">{escape(label)}</text></g>'
        )
    return out


def _axes(
    x_label: str,
    y_label: str,
    xticks: Sequence[tuple[float, str]],
    yticks: Sequence[tuple[float, str]],
) -> list[str]:
    bottom, right = TOP + PLOT_H, LEFT + PLOT_W
    out = [f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{PLOT_H}"/>']
    for py, text in yticks:
        out.append(f'<line class="grid" x1="{LEFT}" x2="{right}" y1="{py:.1f}" y2="{py:.1f}"/>')
        out.append(
            f'<text class="tick" x="{LEFT - 6}" y="{py + 4:.1f}" text-anchor="end">'
            f"{escape(text)}</text>"
        )
    for px, text in xticks:
        out.append(
            f'<line class="axis" x1="{px:.1f}" x2="{px:.1f}" y1="{bottom}" y2="{bottom + 5}"/>'
        )
        out.append(
            f'<text class="tick" x="{px:.1f}" y="{bottom + 18}" text-anchor="middle">'
            f"{escape(text)}</text>"
        )
    out.append(
        f'<text class="alabel" x="{LEFT + PLOT_W / 2:.0f}" y="{HEIGHT - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append(
        f'<text class="alabel" transform="translate(14 {TOP + PLOT_H / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    return out


def _no_data(out: list[str]) -> None:
    out.append(
        f'<text class="nodata" x="{LEFT + PLOT_W / 2:.0f}" y="{TOP + PLOT_H / 2:.0f}" '
        'text-anchor="middle">no data</text>'
    )


def line_chart(
    name: str,
    title: str,
    x: Axis,
    y: Axis,
    series: Sequence[Series],
    *,
    bands: Sequence[Band] = (),
    marks: Sequence[Mark] = (),
    hlines: Sequence[HLine] = (),
) -> str:
    """Lines over a numeric x axis; a ``None`` y leaves a gap; bands and marks over them."""
    xs = [p[0] for s in series for p in s.points]
    xs += [b.x0 for b in bands] + [b.x1 for b in bands] + [m.x for m in marks]
    ys = [p[1] for s in series for p in s.points if p[1] is not None]
    has_data = any(math.isfinite(v) for v in ys)
    ys += [h.y for h in hlines]
    x_lo, x_hi, x_ticks = _domain(xs, x)
    y_lo, y_hi, y_ticks = _domain(ys, y)
    sx = _Scale(x_lo, x_hi, LEFT, LEFT + PLOT_W, log=x.log)
    sy = _Scale(y_lo, y_hi, TOP + PLOT_H, TOP, log=y.log)
    out = _frame(name, title, [(s.label, f"line {s.css}") for s in series])
    out += _axes(
        x.label,
        y.label,
        [(sx(t), x.fmt(t)) for t in x_ticks],
        [(sy(t), y.fmt(t)) for t in y_ticks],
    )
    for b in bands:
        x0, x1 = sx(max(b.x0, x_lo)), sx(min(b.x1, x_hi))
        out.append(
            f'<rect class="band" x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 1.5):.1f}" '
            f'height="{PLOT_H}"><title>{escape(b.label)}</title></rect>'
        )
        out.append(
            f'<text class="bandlabel" x="{x0 + 4:.1f}" y="{TOP + 13}">{escape(b.label)}</text>'
        )
    out += _hlines(hlines, sy)
    for s in series:
        out += _polyline(s, sx, sy, x_lo, x_hi)
    for m in marks:
        px = sx(min(max(m.x, x_lo), x_hi))
        out.append(
            f'<line class="mark mark-{escape(m.kind)}" x1="{px:.1f}" x2="{px:.1f}" y1="{TOP}" '
            f'y2="{TOP + PLOT_H}"><title>{escape(m.label)}</title></line>'
        )
    if not has_data:
        _no_data(out)
    out.append("</svg>")
    return "\n".join(out)


def _polyline(s: Series, sx: _Scale, sy: _Scale, x_lo: float, x_hi: float) -> list[str]:
    segments: list[list[tuple[float, float]]] = [[]]
    for px, py in s.points:
        if py is None or not math.isfinite(py) or (sy.log and py <= 0):
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append((sx(px), sy(py)))
    out = []
    for seg in segments:
        if len(seg) == 1:
            ((cx, cy),) = seg
            out.append(f'<circle class="dot {s.css}" cx="{cx:.1f}" cy="{cy:.1f}" r="2.5"/>')
        elif seg:
            pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in seg)
            out.append(f'<polyline class="line {s.css}" points="{pts}"/>')
    return out


def interval_chart(
    name: str,
    title: str,
    categories: Sequence[str],
    x_label: str,
    y: Axis,
    series: Sequence[IntervalSeries],
    *,
    hlines: Sequence[HLine] = (),
    marks: Sequence[Mark] = (),
) -> str:
    """Per category, each series' estimate as a dot (coloured by its status) with its interval
    as a bar; an unbounded interval runs to the edge of the plot."""
    values: list[float] = []
    for s in series:
        for p in s.points:
            values += [v for v in (p.value, p.low, p.high) if v is not None]
    has_data = any(p.value is not None for s in series for p in s.points)
    values += [h.y for h in hlines]
    y_lo, y_hi, y_ticks = _domain(values, y)
    sy = _Scale(y_lo, y_hi, TOP + PLOT_H, TOP, log=y.log)
    n = max(len(categories), 1)
    step = PLOT_W / n

    def cx(i: float) -> float:
        return LEFT + step * (i + 0.5)

    out = _frame(
        name, title, [(s.label, f"line {s.css}") for s in series] if len(series) > 1 else []
    )
    out += _axes(
        x_label,
        y.label,
        [(cx(i), c) for i, c in enumerate(categories)],
        [(sy(t), y.fmt(t)) for t in y_ticks],
    )
    for m in marks:
        px = cx(m.x)
        out.append(
            f'<line class="mark cmark mark-{escape(m.kind)}" x1="{px:.1f}" x2="{px:.1f}" '
            f'y1="{TOP}" y2="{TOP + PLOT_H}"><title>{escape(m.label)}</title></line>'
        )
        out.append(
            f'<text class="marklabel" x="{px + 4:.1f}" y="{TOP + 12}">{escape(m.label)}</text>'
        )
    out += _hlines(hlines, sy)
    offset = step * 0.12
    for k, s in enumerate(series):
        shift = (k - (len(series) - 1) / 2) * offset
        for p in s.points:
            if p.value is None or not math.isfinite(p.value):
                continue
            px = cx(p.index) + shift
            top = TOP if p.high is None or not math.isfinite(p.high) else sy(min(p.high, y_hi))
            low_edge = TOP + PLOT_H
            bot = low_edge if p.low is None or not math.isfinite(p.low) else sy(max(p.low, y_lo))
            tip = f"{s.label}: {y.fmt(p.value)} ({p.status})"
            out.append(
                f'<line class="ebar {s.css}" x1="{px:.1f}" x2="{px:.1f}" y1="{top:.1f}" '
                f'y2="{bot:.1f}"/>'
            )
            for edge in (top, bot):
                out.append(
                    f'<line class="ebar {s.css}" x1="{px - 5:.1f}" x2="{px + 5:.1f}" '
                    f'y1="{edge:.1f}" y2="{edge:.1f}"/>'
                )
            out.append(
                f'<circle class="est st-{escape(p.status)}" cx="{px:.1f}" '
                f'cy="{sy(p.value):.1f}" r="5"><title>{escape(tip)}</title></circle>'
            )
    if not has_data:
        _no_data(out)
    out.append("</svg>")
    return "\n".join(out)


def _hlines(hlines: Sequence[HLine], sy: Callable[[float], float]) -> list[str]:
    """Horizontal reference lines across the plot, each labelled at its right end."""
    out = []
    for h in hlines:
        py = sy(h.y)
        out.append(
            f'<line class="hline" x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{py:.1f}" y2="{py:.1f}">'
            f"<title>{escape(h.label)}</title></line>"
        )
        out.append(
            f'<text class="hlabel" x="{LEFT + PLOT_W - 4}" y="{py - 4:.1f}" text-anchor="end">'
            f"{escape(h.label)}</text>"
        )
    return out
