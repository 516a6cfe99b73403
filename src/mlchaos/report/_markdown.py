"""A compact Markdown summary for a pull request or a CI job summary.

Title, verdict as a word, a table of checks (status, estimate [interval], bound), each arm's
error rate, p99 and accuracy on one line, recovery, the abort's reason and the kill switch's
time. Text from the journal is escaped so it cannot break the table or inject markup.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mlchaos.report._runs import RunJournal, check_text, ms, pct, point_label, verdict_word

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["render_markdown"]

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#!~])")


def render_markdown(runs: Sequence[RunJournal], *, sweep: Mapping[str, Any] | None = None) -> str:
    """One run's summary, or a sweep's table followed by each run's summary."""
    out: list[str] = []
    if sweep is not None and len(runs) > 1:
        out += _sweep(runs[0].summary.title, sweep)
        for run in runs:
            out += _run(run, level=3, label=point_label(sweep, run.name) or run.name)
    else:
        for run in runs:
            out += _run(run, level=2, label="")
    return "\n".join(out).rstrip() + "\n"


def _run(run: RunJournal, *, level: int, label: str) -> list[str]:
    s = run.summary
    title = _md(s.title) + (f" ({_md(label)})" if label else "")
    out = [f"{'#' * level} {title}: {verdict_word(s.verdict)}", ""]
    facts = [f"**Verdict: {verdict_word(s.verdict)}** (run `{_code(s.run_id)}`)"]
    if s.abort_reason:
        facts.append(f"**Aborted:** {_md(s.abort_reason)}")
    if s.kill_switch_ms is not None:
        facts.append(f"**Kill switch:** faults removed {s.kill_switch_ms:.1f} ms after the trip")
    if s.error:
        facts.append(f"**Error:** {_md(s.error)}")
    facts += [
        f"**Fault:** {_md(r['text'])}" + (" — **it never fired**" if r["never_fired"] else "")
        for r in s.reach
    ]
    if s.recovered is not None:
        took = "" if s.recovery_seconds is None else f" in {s.recovery_seconds:.2f} s"
        facts.append(
            f"**Recovery:** recovered{took}"
            if s.recovered
            else "**Recovery:** NOT recovered within the deadline"
        )
        facts += [f"**Did not hold:** {_md(failing)}" for failing in s.recovery_failing]
    facts += [f"**Journal mismatch:** {_md(m)}" for m in s.mismatches]
    out += [f"{line}  " for line in facts[:-1]] + facts[-1:] + [""]
    if s.checks:
        out += ["| check | status | estimate [interval] | bound |", "|---|---|---|---|"]
        for c in map(check_text, s.checks):
            status = c.status if c.status == "held" else f"**{c.status}**"
            out.append(f"| {_md(c.name)} | {status} | {_md(c.estimate())} | {_md(c.bound)} |")
        out.append("")
    arms = []
    for name, a in s.arms.items():
        if not a.get("requests"):
            continue
        p99 = (a.get("latency") or {}).get("p99")
        arms.append(
            f"**{name}** ({a['requests']} requests"
            + (f" from {a['keys']} keys" if a.get("keys") else "")
            + f"): errors {pct(a.get('errors'), interval=False)}"
            f" · p99 {ms(p99, interval=False)} · accuracy {pct(a.get('accuracy'), interval=False)}"
        )
    if arms:
        out += [f"{line}  " for line in arms[:-1]] + arms[-1:] + [""]
    causes = [(arm, e) for arm, errors in s.errors.items() for e in errors]
    if causes:
        out += [
            "| arm | cause of errors (whole run) | requests | sample answers |",
            "|---|---|---|---|",
        ]
        for arm, e in causes:
            samples = "<br>".join(f"`{_code(x)}`".replace("|", "\\|") for x in e["samples"])
            samples = samples or "-"
            out.append(f"| {arm} | {_md(e['cause'])} | {e['count']} | {samples} |")
        out.append("")
    return out


def _sweep(title: str, sweep: Mapping[str, Any]) -> list[str]:
    field = _md(str(sweep.get("field")))
    verdict = str(sweep.get("verdict", "incomplete"))
    largest = sweep.get("largest_held")
    points = list(sweep.get("points") or [])
    names: list[str] = []
    for p in points:
        names += [c["name"] for c in p.get("checks", []) if c["name"] not in names]
    out = [
        f"## {_md(title)}: sweep over {field}: {verdict_word(verdict)}",
        "",
        f"**Verdict: {verdict_word(verdict)}**; largest {field} at which the hypothesis held: "
        f"{'none' if largest is None else _md(str(largest))}",
        "",
        f"| {field} | verdict | " + " | ".join(_md(n) for n in names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for p in points:
        cells = {c["name"]: c for c in p.get("checks", [])}
        row = " | ".join(_md(_status(cells.get(n))) for n in names)
        out.append(f"| {_md(str(p.get('value')))} | {_md(str(p.get('verdict')))} | {row} |")
    return [*out, ""]


def _status(check: Mapping[str, Any] | None) -> str:
    return "-" if check is None else str(check.get("status"))


def _md(text: str) -> str:
    """Text that renders as itself inside a Markdown table cell: markup characters escaped,
    ``&`` as an entity, line breaks as spaces."""
    flat = " ".join(text.split())
    return _SPECIAL.sub(r"\\\1", flat.replace("&", "&amp;"))


def _code(text: str) -> str:
    return text.replace("`", "'")
