"""The SVG charts: axes that cover the data, well-formed markup whatever the data or labels."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from mlchaos.report._svg import (
    Axis,
    Band,
    HLine,
    Interval,
    IntervalSeries,
    Mark,
    Series,
    _domain,
    interval_chart,
    line_chart,
)

SVG = "{http://www.w3.org/2000/svg}"
values = st.floats(-1e6, 1e6, allow_nan=False)
labels = st.text(max_size=30)


@given(st.lists(values, max_size=50), st.booleans())
def test_the_axis_covers_every_value_with_ordered_ticks_inside_it(
    data: list[float], from_zero: bool
) -> None:
    low = 0.0 if from_zero else None
    if from_zero:
        data = [abs(v) for v in data]
    lo, hi, ticks = _domain(data, Axis("y", low=low))
    assert lo < hi
    slack = 1e-6 * (hi - lo)  # well under a pixel
    assert all(lo - slack <= v <= hi + slack for v in data)
    assert ticks == sorted(ticks) and 2 <= len(ticks) <= 12
    assert all(lo - 1e-6 * (hi - lo) <= t <= hi + 1e-6 * (hi - lo) for t in ticks)


@given(st.lists(st.floats(1e-3, 1e5), min_size=1, max_size=30))
def test_a_log_axis_spans_whole_decades_around_the_data(data: list[float]) -> None:
    lo, hi, ticks = _domain(data, Axis("ms", log=True))
    assert lo <= min(data) and hi >= max(data)
    assert math.log10(lo).is_integer() and math.log10(hi).is_integer()
    assert ticks and all(lo <= t <= hi * 1.0001 for t in ticks)


@given(
    st.lists(st.one_of(st.none(), values), max_size=40),
    labels,
    st.lists(st.tuples(values, values, labels), max_size=3),
    st.lists(st.tuples(values, labels), max_size=3),
)
def test_a_line_chart_is_well_formed_and_escapes_every_label(
    ys: list[float | None],
    title: str,
    bands: list[tuple[float, float, str]],
    marks: list[tuple[float, str]],
) -> None:
    svg = line_chart(
        "name<&>",
        title,
        Axis("x <s>"),
        Axis("y & z"),
        [Series("a<b>", "s-experiment", [(float(i), y) for i, y in enumerate(ys)])],
        bands=[Band(min(a, b), max(a, b), lab) for a, b, lab in bands],
        marks=[Mark(x, lab, "violated") for x, lab in marks],
        hlines=[HLine(1.0, "<bound>")],
    )
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.attrib["data-chart"] == "name<&>"
    shown = "".join("\ufffd" if ord(c) < 32 and c not in "\t\n\r" else c for c in title)
    assert root.findtext(f"{SVG}title") == shown.replace("\r\n", "\n").replace("\r", "\n")
    assert all(e.tag.startswith(SVG) for e in root.iter())  # no element from the labels


def test_an_interval_chart_draws_a_dot_per_estimate_and_runs_open_intervals_to_the_edge() -> None:
    svg = interval_chart(
        "sweep-0",
        "accuracy against duration",
        ["2s", "4s", "8s"],
        "duration",
        Axis("%"),
        [
            IntervalSeries(
                "accuracy",
                "s-estimate",
                [
                    Interval(0, 85.0, 80.0, 88.0, "held"),
                    Interval(1, 70.0, None, 75.0, "violated"),
                    Interval(2, None, None, None, "no_data"),
                ],
            )
        ],
        hlines=[HLine(78.0, "bound >= 78%")],
        marks=[Mark(0, "largest value held", "largest")],
    )
    root = ET.fromstring(svg)
    dots = list(root.iter(f"{SVG}circle"))
    assert [d.attrib["class"] for d in dots] == ["est st-held", "est st-violated"]
    assert "no data" not in svg


def test_a_chart_without_data_says_so() -> None:
    svg = line_chart("empty", "nothing", Axis("x"), Axis("y"), [Series("a", "s-control", [])])
    assert ">no data</text>" in svg
    ET.fromstring(svg)
