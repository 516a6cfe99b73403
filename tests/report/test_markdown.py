"""The Markdown summary for a pull request: verdict word, every check, arms, abort, recovery."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlchaos.report import RunJournal, read_runs, render_markdown


def markdown(path: Path) -> tuple[str, list[RunJournal]]:
    runs, sweep = read_runs(path)
    return render_markdown(runs, sweep=sweep), runs


@pytest.mark.parametrize(
    ("name", "word"), [("held", "HELD"), ("failed", "FAILED"), ("aborted", "ABORTED")]
)
def test_the_summary_has_the_verdict_and_a_row_per_check(
    name: str, word: str, real_runs: dict[str, Path]
) -> None:
    text, (run,) = markdown(real_runs[name])
    assert text.startswith("## ") and text.splitlines()[0].endswith(f": {word}")
    assert f"**Verdict: {word}**" in text
    lines = text.splitlines()
    first = lines.index("| check | status | estimate [interval] | bound |")
    table = lines[first : lines.index("", first)]
    rows = [line for line in table if "|---" not in line]
    assert len(rows) == 1 + len(run.summary.checks)  # the header and one row per check
    for check in run.summary.checks:
        assert any(check["name"] in r and check["status"] in r for r in rows), check["name"]
    for line in ("**experiment**", "**control**", "errors", "p99", "accuracy"):
        assert line in text
    assert "**Recovery:** recovered in" in text


def test_a_failed_check_is_marked_and_shows_estimate_interval_and_bound(
    real_runs: dict[str, Path],
) -> None:
    text, _ = markdown(real_runs["failed"])
    row = next(r for r in text.splitlines() if "experiment error increase at most 10" in r)
    assert "**violated**" in row
    assert "\\[+" in row and "\\<= 10%" in row  # estimate [interval] and bound, escaped


def test_an_aborted_run_gives_the_reason_and_the_kill_switch_time(
    real_runs: dict[str, Path],
) -> None:
    text, (run,) = markdown(real_runs["aborted"])
    assert "**Aborted:** guardrail" in text
    assert f"faults removed {run.summary.kill_switch_ms:.1f} ms after the trip" in text
    # The hostile title and guardrail name come out as text, not markup.
    assert not re.search(r"(?<!\\)<", text)  # every "<" escaped
    assert "\\<script\\>alert(1)\\</script\\>" in text


def test_a_sweep_gets_a_table_of_values_then_each_run(real_runs: dict[str, Path]) -> None:
    text, runs = markdown(real_runs["sweep"])
    assert "sweep over probability" in text
    assert "| 10% |" in text and "| 60% |" in text
    assert text.count("**Verdict:") == 1 + len(runs)
    assert "(probability = 10%)" in text


def test_a_pipe_in_a_check_name_does_not_break_the_table(real_runs: dict[str, Path]) -> None:
    (held,), _ = read_runs(real_runs["held"])
    records = [dict(r) for r in held.records]
    spec = records[0]["spec"]
    hypothesis = [{**spec["hypothesis"][0], "name": "a | b\nc"}, *spec["hypothesis"][1:]]
    records[0] = {**records[0], "spec": {**spec, "hypothesis": hypothesis}}
    text = render_markdown([RunJournal.from_records(records)])
    row = next(r for r in text.splitlines() if "a \\| b c" in r)
    assert len(re.split(r"(?<!\\)\|", row)) == 6  # still four cells


def test_errors_are_broken_down_by_cause_with_sample_answers(real_runs: dict[str, Path]) -> None:
    text, (run,) = markdown(real_runs["failed"])
    (cause,) = run.summary.errors["experiment"]
    assert cause["cause"] == "injected by mlchaos" and cause["count"] > 10
    assert len(cause["samples"]) == 3
    assert run.summary.errors["control"] == []
    assert f"| experiment | injected by mlchaos | {cause['count']} | `" in text
