"""``mlchaos halt`` stops every running experiment and its faults; ``--disable`` refuses new runs
until ``mlchaos enable``. Real processes: a proxy, a runner faulting through it, the CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import MLCHAOS, Spawn
from tests.e2e.test_runner_signals import start


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MLCHAOS, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_halt_stops_the_run_removes_its_fault_and_the_switch_refuses_new_runs(
    tmp_path: Path, spawn: Spawn, upstream: int
) -> None:
    s = start(tmp_path, spawn, upstream)
    s.wait_for_injection()

    done = cli("halt", "--disable", "incident 42")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 experiments stopped" in done.stdout
    assert s.runner.wait(timeout=20) == 1  # aborted: rolled back
    assert not s.experiment_faults()
    records = [json.loads(x) for x in (s.out / "journal.jsonl").read_text().splitlines()]
    assert records[-1]["verdict"] == "aborted"

    refused = cli("run", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "again"), "--quiet")
    assert refused.returncode == 3
    assert "disabled (incident 42)" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr

    assert cli("enable").returncode == 0
    assert "was not disabled" in cli("enable").stdout
    assert cli("halt").stdout.startswith("mlchaos halt: 0 experiments stopped")


def test_halt_with_nothing_running_says_so() -> None:
    done = cli("halt")
    assert done.returncode == 0
    assert "0 experiments stopped, 0 faults removed" in done.stdout
