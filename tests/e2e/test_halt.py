"""``mlchaos halt`` stops every running experiment and its faults; ``--disable`` refuses new runs
until ``mlchaos enable``. Real processes: a proxy, a runner faulting through it, the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psutil

from mlchaos.safety import Registry
from tests.conftest import MLCHAOS, ROOT, Spawn
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


def test_halt_never_signals_a_process_that_reused_a_dead_runners_pid() -> None:
    """A runner killed with SIGKILL leaves its entry; if its pid now belongs to another process
    (another start time), halt drops the entry and leaves that process alone."""
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        registry = Registry()
        registry.register("old-run", "died long ago")
        entry_file = registry.root / "old-run.json"
        entry = json.loads(entry_file.read_text())
        entry.update(pid=bystander.pid, created=1.0)  # the pid, reused by the bystander
        entry_file.write_text(json.dumps(entry))
        done = cli("halt")
        assert done.returncode == 0, done.stdout + done.stderr
        assert bystander.poll() is None, "halt signalled a process that is not a runner"
        assert not entry_file.exists()
        # It stopped nothing: the dead entry is counted as dropped, not as a stopped experiment.
        assert "0 experiments stopped" in done.stdout
        assert "1 entries of runners already gone dropped" in done.stdout
    finally:
        bystander.kill()
        bystander.wait()


def test_halt_resumes_a_pause_held_for_a_stuck_runner_at_once(
    tmp_path: Path, spawn: Spawn, upstream: int
) -> None:
    """The runner is frozen (SIGSTOP: it can neither roll back nor stop renewing in time);
    halt asks the agent to resume what that run paused, long before the 30 s lease ends."""
    victim = subprocess.Popen(["sleep", "60"])
    (tmp_path / "victim.pid").write_text(str(victim.pid))
    agent = spawn("agent", "serve", "--token-file", str(tmp_path / "agent.token"))
    assert agent.stdout is not None
    control = json.loads(agent.stdout.readline())["control"]
    (tmp_path / "exp.yaml").write_text(f"""\
title: paused, then the runner hangs
agents:
  - name: a
    connect: {{url: "{control}", token_file: "{tmp_path / "agent.token"}"}}
traffic:
  target: http://127.0.0.1:{upstream}
  dataset: {ROOT / "examples" / "data" / "toy.csv"}
  rate: 5/s
  duration: 60s
  request: {{protocol: v2, model: toy}}
  label: label
  key: entity_id
faults:
  - {{type: pause, target: a, process: {{pidfile: victim.pid}}}}
hypothesis:
  - {{metric: error_rate, arm: control, max: 5%}}
lease: 30s
""")
    runner = spawn("run", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "out"), "--quiet")
    try:
        deadline = time.monotonic() + 30
        while psutil.Process(victim.pid).status() != psutil.STATUS_STOPPED:
            assert runner.poll() is None and time.monotonic() < deadline, "never paused"
            time.sleep(0.05)
        runner.send_signal(signal.SIGSTOP)
        done = cli("halt")
        assert "1 faults removed" in done.stdout, done.stdout
        assert psutil.Process(victim.pid).status() != psutil.STATUS_STOPPED
    finally:
        runner.kill()
        victim.kill()
        victim.wait()
