"""CPU faults through the runner: the toy model throttled to a share of a core is measurably
slower while the fault is in place, and a throttled process whose runner is killed with SIGKILL
is released by the agent within the lease.

Real processes: the toy model, a CPU-bound Python process, a separately running agent, and
``mlchaos run``. Needs root and the cgroup cpu controller (skipped elsewhere, naming why;
required in CI with ``MLCHAOS_REQUIRE_CGROUPS=1``).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mlchaos.journal import read_journal
from mlchaos.report._runs import rebuild_store
from tests.conftest import ROOT, Spawn
from tests.e2e.test_pause_lease import ready_line

LEASE_S = 1.0

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="cgroups are Linux's"),
    pytest.mark.usefixtures("needs_cgroups"),
]


def agent_section(spawn: Spawn, tmp_path: Path) -> str:
    agent = ready_line(spawn("agent", "serve", "--token-file", str(tmp_path / "agent.token")))
    return (
        f'agents:\n  - name: a\n    connect: {{url: "{agent["control"]}", '
        f'token_file: "{tmp_path / "agent.token"}"}}\n'
    )


@pytest.mark.slow
def test_a_model_throttled_to_2_percent_of_a_core_answers_slower_only_while_throttled(
    tmp_path: Path, spawn: Spawn, upstream: int
) -> None:
    (tmp_path / "exp.yaml").write_text(
        agent_section(spawn, tmp_path)
        + f"""\
title: the toy model starved of CPU
traffic:
  target: http://127.0.0.1:{upstream}
  dataset: {ROOT / "examples" / "data" / "toy.csv"}
  rate: 100/s
  duration: 9s
  timeout: 2s
  request: {{protocol: v2, model: toy}}
  label: label
  key: entity_id
faults:
  - {{type: cpu, target: a, process: {{port: {upstream}}}, share: 2%, start: 3s, duration: 3s}}
hypothesis:
  - {{metric: error_rate, arm: control, max: 50%}}
"""
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlchaos",
            "run",
            str(tmp_path / "exp.yaml"),
            "--quiet",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode in (0, 1), run.stdout[-3000:] + run.stderr[-2000:]
    assert "cpu limit 2% of a core" in run.stdout
    records = read_journal(tmp_path / "out" / "journal.jsonl")
    events = {r["event"]: r["t"] for r in records if r.get("kind") == "fault"}
    assert {"injected", "removed", "verified_removed"} <= set(events)
    store = rebuild_store(records)
    start, latency = store.column("start"), store.column("latency")
    during = (start >= events["injected"] + 0.5) & (start < events["removed"] - 0.5)
    before = start < events["injected"] - 0.2
    # 2 ms of CPU per 100 ms period: most requests wait for the next period
    slow, fast = np.nanpercentile(latency[during], 90), np.nanpercentile(latency[before], 90)
    assert slow > 5 * fast, (slow, fast)


def test_a_runner_killed_with_sigkill_leaves_no_throttled_process_past_its_lease(
    tmp_path: Path, spawn: Spawn, upstream: int, burner: subprocess.Popen[bytes]
) -> None:
    home = Path(f"/proc/{burner.pid}/cgroup").read_text()
    (tmp_path / "burner.pid").write_text(str(burner.pid))
    (tmp_path / "exp.yaml").write_text(
        agent_section(spawn, tmp_path)
        + f"""\
title: throttled, runner killed
traffic:
  target: http://127.0.0.1:{upstream}
  dataset: {ROOT / "examples" / "data" / "toy.csv"}
  rate: 20/s
  duration: 60s
  request: {{protocol: v2, model: toy}}
  label: label
  key: entity_id
faults:
  - {{type: cpu, target: a, process: {{pidfile: burner.pid}}, share: 10%, start: 0s}}
hypothesis:
  - {{metric: error_rate, arm: control, max: 5%}}
lease: {LEASE_S:g}s
"""
    )
    runner = spawn("run", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "out"), "--quiet")
    deadline = time.monotonic() + 30
    while Path(f"/proc/{burner.pid}/cgroup").read_text() == home:
        assert runner.poll() is None, runner.communicate()[0]
        assert time.monotonic() < deadline, "the runner never throttled the process"
        time.sleep(0.05)
    time.sleep(2 * LEASE_S)  # renewals keep it throttled past one lease
    assert Path(f"/proc/{burner.pid}/cgroup").read_text() != home

    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=5)
    killed_at = time.monotonic()
    while Path(f"/proc/{burner.pid}/cgroup").read_text() != home:
        assert time.monotonic() - killed_at < LEASE_S + 1.5, "still throttled after the lease"
        time.sleep(0.05)
