"""The page every HTML report is: its stylesheet, its Content-Security-Policy (nothing may be
loaded or run) and the index page that links several reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING

from mlchaos.report._runs import verdict_word

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["IndexEntry", "page", "render_index", "when"]


@dataclass(frozen=True)
class IndexEntry:
    """One line of an index page: a report and the verdict of its run."""

    name: str
    verdict: str
    href: str | None  # the report, relative to the index; None when there is none
    expected: str | None = None  # the verdict the run was meant to reach, where it is known
    note: str = ""


def render_index(title: str, entries: Sequence[IndexEntry], *, note: str = "") -> str:
    """A page linking several reports, each with its run's verdict."""
    rows = []
    for e in entries:
        name = escape(e.name)
        link = f'<a href="{escape(e.href)}">{name}</a>' if e.href else name
        expected = "" if e.expected is None else escape(e.expected)
        as_expected = e.expected is None or e.expected == e.verdict
        rows.append(
            f"<tr><td>{link}</td>"
            f'<td><span class="word v-{escape(e.verdict)}">{escape(verdict_word(e.verdict))}'
            f"</span></td><td>{expected}</td>"
            f'<td class="{"ok" if as_expected else "bad"}">'
            f"{'as expected' if as_expected else 'NOT as expected'}</td>"
            f"<td>{escape(e.note)}</td></tr>"
        )
    body = (
        f"<header><h1>{escape(title)}</h1>"
        + (f'<p class="meta">{escape(note)}</p>' if note else "")
        + "</header><section><table><thead><tr><th>experiment</th><th>verdict</th>"
        "<th>expected</th><th></th><th>note</th></tr></thead><tbody>"
        + "\n".join(rows)
        + "</tbody></table></section>"
    )
    return page(title, body)


def when(t: float) -> str:
    """Epoch seconds as a UTC time a person reads."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_CSS = """
:root { --exp: #e8590c; --ctl: #1971c2; --ok: #2f9e44; --bad: #e03131; --warn: #f08c00;
  --muted: #868e96; --line: #dee2e6; --bg: #ffffff; --fg: #212529; }
* { box-sizing: border-box; }
body { margin: 0; background: #f8f9fa; color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; background: var(--bg); }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 28px 0 8px; }
h3 { font-size: 16px; margin: 22px 0 8px; }
.meta, .note { color: var(--muted); margin: 4px 0 10px; } .desc { max-width: 80ch; }
.sample { font-family: ui-monospace, monospace; font-size: 12px; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 8px 0 12px; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left;
  vertical-align: top; }
th { background: #f1f3f5; font-weight: 600; } td.num { font-variant-numeric: tabular-nums;
  white-space: nowrap; }
.ok { color: var(--ok); } .bad { color: var(--bad); font-weight: 600; }
.banner { display: flex; gap: 20px; align-items: flex-start; border-radius: 6px;
  padding: 14px 18px; margin: 16px 0; border-left: 8px solid var(--muted); background: #f1f3f5; }
.banner .word { font-size: 28px; font-weight: 800; letter-spacing: .04em; min-width: 150px; }
.banner dl { margin: 0; display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; }
.banner dt { font-weight: 600; } .banner dd { margin: 0; overflow-wrap: anywhere; }
.v-held { border-color: var(--ok); background: #ebfbee; }
.v-held .word, .word.v-held { color: var(--ok); }
.v-failed, .v-aborted, .v-error { border-color: var(--bad); background: #fff5f5; }
.v-failed .word, .v-aborted .word, .v-error .word, .word.v-failed, .word.v-aborted,
.word.v-error { color: var(--bad); }
.v-incomplete { border-color: var(--warn); background: #fff9db; }
.word { font-weight: 700; }
.st { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px;
  font-weight: 600; color: #fff; background: var(--muted); }
.st-held { background: var(--ok); } .st-violated, .st-failed, .st-aborted, .st-error {
  background: var(--bad); } .st-unsure { background: var(--warn); }
.charts { display: flex; flex-direction: column; gap: 10px; }
svg.chart { display: block; max-width: 100%; height: auto; background: #fff; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #495057; }
svg.chart .ctitle { font-size: 13px; font-weight: 600; fill: var(--fg); }
svg.chart .alabel { font-size: 12px; fill: #343a40; }
svg.chart .plot { fill: #fcfcfd; stroke: #ced4da; }
svg.chart .grid { stroke: #e9ecef; } svg.chart .axis { stroke: #adb5bd; }
svg.chart .nodata { font-size: 14px; fill: var(--muted); }
svg.chart .line { fill: none; stroke-width: 2; stroke-linejoin: round; }
svg.chart .s-experiment { stroke: var(--exp); } svg.chart .s-control { stroke: var(--ctl); }
svg.chart .s-estimate { stroke: #495057; }
svg.chart .dot.s-experiment { fill: var(--exp); } svg.chart .dot.s-control { fill: var(--ctl); }
svg.chart .ebar { stroke-width: 1.5; }
svg.chart .est { stroke: #fff; stroke-width: 1.5; fill: #495057; }
svg.chart .st-held { fill: var(--ok); } svg.chart .st-violated { fill: var(--bad); }
svg.chart .st-unsure { fill: var(--warn); } svg.chart .st-no_data { fill: var(--muted); }
svg.chart .band { fill: rgba(224, 49, 49, .10); }
svg.chart .bandlabel { fill: #c92a2a; font-size: 10px; }
svg.chart .hline { stroke: #868e96; stroke-dasharray: 5 4; }
svg.chart .hlabel { fill: #868e96; font-size: 10px; }
svg.chart .mark { stroke-width: 2; }
svg.chart .cmark { stroke-width: 1; stroke-dasharray: 3 4; }
svg.chart .marklabel { font-size: 10px; fill: #495057; }
.mark-violated { stroke: var(--bad); color: var(--bad); }
.mark-unsure { stroke: var(--warn); stroke-dasharray: 4 3; color: var(--warn); }
.mark-held { stroke: var(--ok); stroke-dasharray: 2 3; color: var(--ok); }
.mark-abort { stroke: #862e9c; stroke-dasharray: 8 4; color: #c92a2a; }
svg.chart .mark-abort { stroke: #c92a2a; stroke-width: 3; }
.mark-alert { stroke: #7048e8; color: #7048e8; }
.mark-largest { stroke: var(--ok); color: var(--ok); } .mark-current { stroke: #495057; }
.key { font-weight: 600; }
article.run { border-top: 3px solid var(--line); margin-top: 28px; }
details { margin: 14px 0; } summary { cursor: pointer; color: #495057; }
footer { color: var(--muted); margin-top: 30px; font-size: 12px; }
"""


def page(title: str, body: str) -> str:
    """The whole document around ``body`` (already escaped HTML)."""
    from mlchaos import __version__  # noqa: PLC0415

    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>mlchaos: {escape(title)}</title><style>{_CSS}</style></head>\n<body><main>\n"
        f"{body}\n<footer>Rebuilt from the journal alone by mlchaos {escape(__version__)}."
        "</footer>\n</main></body></html>\n"
    )
