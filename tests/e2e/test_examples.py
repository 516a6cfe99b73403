"""The bundled examples run end to end against the toy model, through a real proxy."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import MLCHAOS, ROOT, free_port


def localised(name: str, tmp_path: Path, upstream: int) -> Path:
    """The example with its ports moved to free ones and its dataset path made absolute."""
    proxy = free_port()
    text = (ROOT / "examples" / name).read_text()
    text = text.replace("18500", str(upstream)).replace("18501", str(proxy))
    text = text.replace("dataset: data/", f"dataset: {ROOT / 'examples' / 'data'}/")
    path = tmp_path / name
    path.write_text(text)
    return path


def run(spec: Path, out: Path) -> tuple[int, dict[str, object], str]:
    proc = subprocess.run(
        [*MLCHAOS, "run", str(spec), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = (
        json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    )
    return proc.returncode, summary, proc.stdout + proc.stderr


def test_abort_example_raises_experiment_errors_only_and_holds(
    tmp_path: Path, upstream: int
) -> None:
    code, summary, output = run(
        localised("abort-experiment-arm.yaml", tmp_path, upstream), tmp_path / "out"
    )
    assert code == 0, output
    arms = summary["arms"]
    assert isinstance(arms, dict)
    exp_rate = arms["experiment"]["errors"]["value"]
    ctrl_rate = arms["control"]["errors"]["value"]
    assert 0.08 < exp_rate < 0.35  # 20% of experiment calls aborted
    assert ctrl_rate == 0.0
    assert summary["verdict"] == "held"
    assert "HELD" in output
    # The proxy marks the answers its fault made; the traffic fills the fault column from it.
    rows = [
        r["columns"]
        for r in map(json.loads, (tmp_path / "out" / "journal.jsonl").read_text().splitlines())
        if r["kind"] == "observations"
    ]
    status = [s for cols in rows for s in cols["status"]]
    fault = [f for cols in rows for f in cols["fault"]]
    assert sum(fault) > 50
    assert [s for s, f in zip(status, fault, strict=True) if f] == [503] * sum(fault)
    assert 503 not in [s for s, f in zip(status, fault, strict=True) if not f]


def test_violated_example_exits_1_and_names_the_failed_check(tmp_path: Path, upstream: int) -> None:
    code, summary, output = run(
        localised("violated-hypothesis.yaml", tmp_path, upstream), tmp_path / "out"
    )
    assert code == 1, output
    assert summary["verdict"] == "failed"
    checks = {c["name"]: c["status"] for c in summary["checks"]}  # type: ignore[union-attr]
    assert checks["experiment error increase at most 10 points"] == "violated"


def test_report_rebuilds_the_same_summary_from_the_journal(tmp_path: Path, upstream: int) -> None:
    out = tmp_path / "out"
    run(localised("abort-experiment-arm.yaml", tmp_path, upstream), out)
    rebuilt = subprocess.run(
        [*MLCHAOS, "report", str(out / "journal.jsonl"), "--json", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(rebuilt.stdout) == json.loads((out / "summary.json").read_text())


def test_the_run_folder_is_named_by_the_run_id_the_journal_records(
    tmp_path: Path, upstream: int
) -> None:
    spec = localised("abort-experiment-arm.yaml", tmp_path, upstream)
    proc = subprocess.run(
        [*MLCHAOS, "run", str(spec), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    (folder,) = (tmp_path / "reports").iterdir()
    header = json.loads((folder / "journal.jsonl").read_text().splitlines()[0])
    assert header["run_id"] == folder.name, (header["run_id"], folder.name)
    assert f"run {folder.name}" in proc.stdout  # the summary names the same run
