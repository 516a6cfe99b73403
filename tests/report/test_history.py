"""``mlchaos history``: runs indexed from their journals, per experiment over time, and a
regression flagged only when the intervals say a run was worse than the one before it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mlchaos.cli import main
from mlchaos.report._history import HistoryRun, regressions
from tests.browser import assert_renders, headless_chromium, inspect_report
from tests.conftest import MLCHAOS


def run(title: str, errors: int, n: int, correct: int | None = None, t: float = 0.0) -> HistoryRun:
    rate = {"value": errors / n, "low": 0.0, "high": 1.0, "n": n, "confidence": 0.95}
    accuracy = None
    if correct is not None:
        accuracy = {"value": correct / n, "low": 0.0, "high": 1.0, "n": n, "confidence": 0.95}
        accuracy["count"] = correct
    return HistoryRun(
        path=f"/r/{t}",
        run_id=f"run-{t:g}",
        title=title,
        started=t,
        verdict="held",
        detect_s=None,
        recover_s=None,
        errors={**rate, "count": errors},
        accuracy=accuracy,
        error_diff=None,
        accuracy_diff=None,
        degraded=None,
        faulted_requests=n,
        fault_seconds=8.0,
    )


def test_a_regression_is_what_the_intervals_show_not_a_moved_point() -> None:
    judged = regressions(
        [
            run("a", 0, 500, 450, t=1),
            run("a", 30, 500, 450, t=2),  # 0% → 6%: Newcombe's interval lies above 0
            run("a", 33, 500, 449, t=3),  # 6% → 6.6%: the point moved, the interval spans 0
            run("b", 2, 500, 450, t=4),  # another experiment: judged against its own runs only
            run("a", 33, 500, 400, t=5),  # accuracy 89.8% → 80%: fell
        ]
    )
    assert [bool(r.regression) for r in judged] == [False, True, False, False, True]
    assert judged[1].regression[0].startswith("errors rose by 6.0 points [+")
    assert judged[1].regression[0].endswith("since run-1")
    assert judged[4].regression == [judged[4].regression[0]] and judged[4].regression[0].startswith(
        "accuracy fell by 9.8 points"
    )


def demo(out: Path, *args: str) -> None:
    argv = [*MLCHAOS, "demo", "--quiet", "--only", "endpoint-failover", "--duration", "6"]
    done = subprocess.run(
        [*argv, "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-2000:]


@pytest.mark.slow
def test_the_demo_run_twice_the_second_naive_shows_the_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    demo(reports / "1-resilient")
    demo(reports / "2-naive", "--variant", "naive")

    assert main(["history", str(reports)]) == 0
    assert "2 runs, 1 regression(s) flagged" in capsys.readouterr().out
    page = reports / "history.html"
    html = page.read_text()
    assert "Endpoint failover" in html and "errors rose by" in html
    assert "1 regression(s) flagged" in html

    assert main(["history", str(reports), "--format", "json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["verdict"] for r in runs] == ["held", "failed"]
    assert runs[0]["regression"] == [] and runs[1]["regression"][0].startswith("errors rose")
    assert runs[1]["errors"]["low"] > runs[0]["errors"]["high"]  # the intervals apart
    assert all(r["faulted_requests"] > 0 and r["fault_seconds"] > 0 for r in runs)

    assert main(["history", str(reports), "--format", "markdown"]) == 0
    assert "**REGRESSION**: errors rose" in capsys.readouterr().out

    # The index follows the journals: a run whose journal is gone leaves the history.
    shutil.rmtree(reports / "2-naive" / "endpoint-failover")
    assert main(["history", str(reports), "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["runs"]) == 1

    if not shutil.which("chromium") and os.environ.get("MLCHAOS_REQUIRE_CHROMIUM") != "1":
        return  # the browser check needs chromium (required in CI)
    with headless_chromium(tmp_path / "chromium-profile") as devtools:
        seen = inspect_report(devtools, page)
    (tmp_path / "history.png").write_bytes(seen["shot"])
    assert_renders(seen, page)


def test_history_of_a_missing_folder_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "not a folder" in err and "Traceback" not in err
