"""The HTML report: self-contained, escaped, with the verdict, checks, timelines and sweeps."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from mlchaos.report import IndexEntry, RunJournal, read_runs, render_html, render_index
from tests.report.conftest import HOSTILE_GUARDRAIL, HOSTILE_TITLE

# Every element the report is made of; anything else would have come from the journal.
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "footer", "section",
    "article", "details", "summary", "h1", "h2", "h3", "h4", "p", "div", "span", "a", "dl", "dt",
    "dd", "table", "thead", "tbody", "tr", "th", "td", "svg", "g", "text", "line", "rect",
    "polyline", "circle",
}  # fmt: skip


class Page(HTMLParser):
    """Tags, text per tag, and the charts of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: dict[str, list[str]] = {}
        self._open: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self._open:
            self.text.setdefault(self._open[-1], []).append(data)

    def charts(self) -> list[str]:
        return [a["data-chart"] or "" for t, a in self.tags if t == "svg" and "data-chart" in a]


def html_of(path: Path) -> str:
    runs, sweep = read_runs(path)
    return render_html(runs, sweep=sweep)


def edited(run: RunJournal, **spec: Any) -> list[dict[str, Any]]:
    records = [dict(r) for r in run.records]
    records[0] = {**records[0], "spec": {**records[0]["spec"], **spec}}
    return records


@pytest.mark.parametrize("name", ["held", "failed", "aborted", "sweep"])
def test_the_page_is_self_contained_and_made_only_of_known_elements(
    name: str, real_runs: dict[str, Path]
) -> None:
    html = html_of(real_runs[name])
    page = Page(html)
    assert {t for t, _ in page.tags} <= ALLOWED_TAGS
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(\s*['\"]?https?:", html, re.I)
    assert not any(k in ("src", "srcset") for _, a in page.tags for k in a)
    assert "default-src 'none'" in html  # and a CSP forbids loading or running anything
    links = [a["href"] for t, a in page.tags if t == "a"]
    assert all(not re.match(r"https?:", h or "") for h in links)


@pytest.mark.parametrize("name", ["held", "aborted", "sweep"])
def test_every_chart_has_a_title_and_both_axis_labels(
    name: str, real_runs: dict[str, Path]
) -> None:
    html = html_of(real_runs[name])
    svgs = re.findall(r'<svg class="chart".*?</svg>', html, re.S)
    assert svgs and len(svgs) == len(Page(html).charts())
    for svg in svgs:
        assert re.search(r"<title>[^<]+</title>", svg)
        assert len(re.findall(r'class="alabel"', svg)) == 2


def test_a_held_run_has_its_banner_checks_timelines_and_latency(
    real_runs: dict[str, Path],
) -> None:
    html = html_of(real_runs["held"])
    page = Page(html)
    assert '<section class="banner v-held"><div class="word">HELD</div>' in html
    assert set(page.charts()) == {
        "timeline-rate",
        "timeline-errors",
        "timeline-p99",
        "timeline-accuracy",  # the toy dataset is labelled
        "latency-ecdf",
    }
    (run,), _ = read_runs(real_runs["held"])
    cells = " ".join(page.text.get("td", []))
    for check in run.summary.checks:
        assert check["name"] in cells
    assert 'class="band"' in html  # the fault's window on the timelines
    assert "Alerts" not in page.text.get("h2", [])


def test_an_aborted_run_shows_reason_trip_and_kill_switch_and_marks_them_in_time(
    real_runs: dict[str, Path],
) -> None:
    html = html_of(real_runs["aborted"])
    page = Page(html)
    assert '<div class="word">ABORTED</div>' in html
    banner = dict(zip(page.text["dt"], page.text["dd"], strict=False))
    assert HOSTILE_GUARDRAIL in banner["aborted"]
    assert banner["kill switch"].startswith("faults removed")
    assert "mark-abort" in html and "mark-violated" in html


def test_hostile_text_from_the_journal_is_shown_as_text(real_runs: dict[str, Path]) -> None:
    """The real aborted run has a title and guardrail name with markup; a check name and the
    description get some too. None of it becomes an element."""
    (run,), _ = read_runs(real_runs["aborted"])
    hostile_check = '</td><script>alert(3)</script>"><b>'
    hypothesis = [{**run.spec["hypothesis"][0], "name": hostile_check}, *run.spec["hypothesis"][1:]]
    records = edited(run, hypothesis=hypothesis, description="<iframe src=//evil>")
    html = render_html([RunJournal.from_records(records)])
    page = Page(html)
    assert {t for t, _ in page.tags} <= ALLOWED_TAGS
    assert "<script" not in html.lower() and "<iframe" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert page.text["h1"] == [HOSTILE_TITLE]
    assert hostile_check in page.text["td"]
    assert any(HOSTILE_GUARDRAIL in t for t in page.text["dd"])


def test_alerts_are_listed_when_the_journal_has_them(real_runs: dict[str, Path]) -> None:
    (run,), _ = read_runs(real_runs["held"])
    t = run.records[0]["t"]
    alert = {
        "kind": "alert",
        "name": "<b>HighErrorRate</b>",
        "fired_at": t + 3.0,
        "resolved_at": t + 9.5,
        "time_to_detect_s": 2.0,
        "time_to_resolve_s": 6.5,
        "status": "resolved",
    }
    records = [*run.records[:-1], {"t": t + 10, **alert}, run.records[-1]]
    html = render_html([RunJournal.from_records(records)])
    page = Page(html)
    assert "Alerts" in page.text["h2"]
    assert "<b>HighErrorRate</b>" in page.text["td"]
    assert "2.000 s" in page.text["td"] and "6.500 s" in page.text["td"]
    assert "mark-alert" in html


def test_answers_from_another_model_draw_the_fallback_share(real_runs: dict[str, Path]) -> None:
    """Experiment-arm answers during the fault re-labelled as from a 'fallback' model."""
    (run,), _ = read_runs(real_runs["held"])
    injected = next(r["t"] for r in run.records if r.get("event") == "injected")
    records = []
    for r in run.records:
        if r["kind"] != "observations":
            records.append(r)
            continue
        cols = dict(r["columns"])
        cols["model"] = [
            1 if arm == 1 and start >= injected and m == 0 else m
            for arm, start, m in zip(cols["arm"], cols["start"], cols["model"], strict=True)
        ]
        records.append({**r, "columns": cols, "models": [*r["models"], "fallback"]})
    html = render_html([RunJournal.from_records(records)])
    assert "timeline-fallback" in Page(html).charts()
    assert "answers from other models than &#x27;toy&#x27;" in html


def test_a_sweep_report_has_a_curve_per_check_and_every_run(real_runs: dict[str, Path]) -> None:
    runs, sweep = read_runs(real_runs["sweep"])
    assert sweep is not None and len(runs) == 2
    page = Page(render_html(runs, sweep=sweep))
    charts = page.charts()
    checks = {c["name"] for p in sweep["points"] for c in p["checks"]}
    # three hypothesis checks and the split check
    assert [c for c in charts if c.startswith("sweep-")] == [f"sweep-{i}" for i in range(4)]
    assert len(checks) == 4
    for run in runs:
        assert f"{run.name}/timeline-rate" in charts
    assert "Sweep over probability" in page.text["h2"]


def test_one_run_of_a_sweep_shows_the_sweep_with_itself_marked(
    real_runs: dict[str, Path],
) -> None:
    journal = next(real_runs["sweep"].glob("01-*/journal.jsonl"))
    runs, sweep = read_runs(journal)
    assert sweep is not None and len(runs) == 1
    html = render_html(runs, sweep=sweep)
    assert "Sweep over probability" in Page(html).text["h2"]
    assert html.count(">this run</text>") == 4  # marked on each check's curve


def test_the_index_links_every_report_with_its_verdict() -> None:
    html = render_index(
        "demo",
        [
            IndexEntry("fallback-activation", "held", "fallback-activation/report.html"),
            IndexEntry("live-kill-switch", "aborted", "live-kill-switch/report.html", "aborted"),
            IndexEntry("<b>x</b>", "error", None, "held", "could not run"),
        ],
    )
    page = Page(html)
    links = [a["href"] for t, a in page.tags if t == "a"]
    assert links == ["fallback-activation/report.html", "live-kill-switch/report.html"]
    assert "NOT as expected" in page.text["td"] and "<b>x</b>" in page.text["td"]
