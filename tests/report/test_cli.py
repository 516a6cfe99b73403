"""``mlchaos report --format``, ``execute(formats=...)`` and the demo's index page."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
from pathlib import Path

import pytest
import xmlschema
from rich.console import Console

from mlchaos.cli import main
from mlchaos.report import read_runs
from tests.conftest import MLCHAOS, ROOT, free_port

SCHEMA = Path(__file__).with_name("junit-10.xsd")


def test_report_writes_junit_to_a_file_and_exits_0(
    real_runs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "junit.xml"
    proc = subprocess.run(
        [*MLCHAOS, "report", str(real_runs["failed"] / "journal.jsonl"), "--format", "junit",
         "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"junit report: {out}"
    xmlschema.XMLSchema(SCHEMA).validate(out.read_text())


def test_an_unknown_format_exits_2_with_one_clear_line(real_runs: dict[str, Path]) -> None:
    proc = subprocess.run(
        [*MLCHAOS, "report", str(real_runs["held"]), "--format", "pdf"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert errors == [
        "mlchaos: error: argument --format: invalid choice: 'pdf' "
        "(choose from 'terminal', 'html', 'junit', 'markdown', 'json')"
    ]
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("fmt", "start"),
    [("html", "<!DOCTYPE html>"), ("markdown", "## "), ("junit", "<?xml"), ("json", "{")],
)
def test_each_format_goes_to_stdout_without_out(
    fmt: str, start: str, real_runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(real_runs["aborted"]), "--format", fmt]) == 0
    assert capsys.readouterr().out.startswith(start)


def test_json_format_is_the_summary_and_json_dash_still_works(
    real_runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run = real_runs["held"]
    assert main(["report", str(run / "journal.jsonl"), "--format", "json"]) == 0
    as_format = json.loads(capsys.readouterr().out)
    assert main(["report", str(run / "journal.jsonl"), "--json", "-"]) == 0
    as_option = json.loads(capsys.readouterr().out)
    assert as_format == as_option == json.loads((run / "summary.json").read_text())


def test_a_sweep_directory_reports_every_run(
    real_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep.md"
    args = ["report", str(real_runs["sweep"]), "--format", "markdown", "--out", str(out)]
    assert main(args) == 0
    assert out.read_text().count("**Verdict:") == 3  # the sweep's and each of its two runs'


def test_json_dash_with_a_document_on_stdout_too_is_refused(
    real_runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(real_runs["held"]), "--format", "html", "--json", "-"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0]


def test_terminal_format_can_be_written_to_a_file(
    real_runs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "summary.txt"
    assert main(["report", str(real_runs["failed"]), "--out", str(out)]) == 0
    text = out.read_text()
    assert "verdict: FAILED" in text and "\x1b[" not in text


def test_execute_writes_the_reports_asked_for_next_to_the_summary(
    tmp_path: Path, upstream: int
) -> None:
    from mlchaos.console import execute
    from mlchaos.spec import load_experiment

    text = (ROOT / "examples" / "abort-experiment-arm.yaml").read_text()
    text = text.replace("18500", str(upstream)).replace("18501", str(free_port()))
    text = text.replace("dataset: data/", f"dataset: {ROOT / 'examples' / 'data'}/")
    text = text.replace("duration: 10s", "duration: 3s").replace("duration: 8s", "duration: 1s")
    spec = tmp_path / "short.yaml"
    spec.write_text(text)
    out = tmp_path / "out"
    console = Console(file=io.StringIO(), width=120)
    done = asyncio.run(
        execute(
            load_experiment(spec),
            base_dir=tmp_path,
            out_dir=out,
            console=console,
            quiet=True,
            formats=("html", "junit", "markdown"),
        )
    )
    assert done.summary is not None
    assert sorted(p.name for p in out.iterdir()) == [
        "journal.jsonl",
        "junit.xml",
        "report.html",
        "report.md",
        "summary.json",
    ]
    xmlschema.XMLSchema(SCHEMA).validate((out / "junit.xml").read_text())
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert done.summary.title in (out / "report.md").read_text()


def test_execute_refuses_an_unknown_format_before_running(tmp_path: Path) -> None:
    from mlchaos.console import execute
    from mlchaos.spec import load_experiment

    exp = load_experiment(ROOT / "examples" / "abort-experiment-arm.yaml")
    with pytest.raises(ValueError, match="unknown report formats"):
        asyncio.run(
            execute(exp, base_dir=tmp_path, out_dir=tmp_path, console=Console(), formats=["pdf"])
        )
    assert not (tmp_path / "journal.jsonl").exists()


def test_the_demo_writes_an_index_linking_each_report_with_its_verdict(
    real_runs: dict[str, Path], tmp_path: Path
) -> None:
    from mlchaos.demo._run import _Row, _write_summary
    from mlchaos.report import render_html

    rows = []
    for name, demo_name in (("held", "fallback-activation"), ("aborted", "live-kill-switch")):
        runs, _ = read_runs(real_runs[name])
        (tmp_path / demo_name).mkdir()
        (tmp_path / demo_name / "report.html").write_text(render_html(runs))
        rows.append(_Row(demo_name, runs[0].summary.verdict, runs[0].summary))
    rows.append(_Row("replica-crash", "error", None, "could not start the demo service"))
    _write_summary(tmp_path, "resilient", "sqlite", rows)
    index = (tmp_path / "index.html").read_text()
    assert 'href="fallback-activation/report.html"' in index
    assert 'href="live-kill-switch/report.html"' in index
    assert "replica-crash" in index and 'href="replica-crash' not in index
    assert index.count("as expected") == 3  # 'as expected' twice and 'NOT as expected' once
    assert "NOT as expected" in index and "could not start the demo service" in index
