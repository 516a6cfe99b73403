"""A runner stopped by a signal or killed outright never leaves a fault behind.

SIGKILL: the runner cannot clean up, so the separately running proxy drops the fault itself
once the lease runs out. SIGTERM / SIGINT: the runner removes the fault at once, rolls back,
and exits 1 (aborted).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, Spawn, start_proxy

LEASE_S = 1.0


@dataclass
class Setup:
    control: int
    token: str
    runner: subprocess.Popen[str]
    out: Path

    def faults(self) -> list[dict[str, object]]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.control}/faults",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            faults: list[dict[str, object]] = json.loads(resp.read())["faults"]
        return faults

    def experiment_faults(self) -> list[dict[str, object]]:
        """The experiment's own faults, not the preflight rehearsal's 0% copy."""
        return [f for f in self.faults() if not str(f["id"]).endswith("-rehearsal")]

    def wait_for_injection(self) -> None:
        deadline = time.monotonic() + 30
        while not self.experiment_faults():
            assert self.runner.poll() is None, (
                self.runner.stdout.read() if self.runner.stdout else ""
            )
            assert time.monotonic() < deadline, "the runner never injected its fault"
            time.sleep(0.05)


def start(tmp_path: Path, spawn: Spawn, upstream: int) -> Setup:
    """A proxy as its own process, and a runner (its own process) faulting through it."""
    proxy = start_proxy(tmp_path, spawn, upstream)
    control, listen, token_file = proxy.control, proxy.listen, proxy.token_file
    (tmp_path / "exp.yaml").write_text(f"""\
title: stopped mid-run
proxies:
  - name: p
    connect: {{url: "http://127.0.0.1:{control}", token_file: "{token_file}"}}
traffic:
  target: http://127.0.0.1:{listen}
  dataset: {ROOT / "examples" / "data" / "toy.csv"}
  rate: 20/s
  duration: 60s
  request: {{protocol: v2, model: toy}}
  label: label
  key: entity_id
faults:
  - {{type: abort, target: p, status: 503}}
hypothesis:
  - {{metric: error_rate, arm: control, max: 5%}}
lease: {LEASE_S:g}s
""")
    out = tmp_path / "out"
    runner = spawn("run", str(tmp_path / "exp.yaml"), "--out", str(out), "--quiet")
    return Setup(control, token_file.read_text().strip(), runner, out)


def test_sigkilled_runner_leaves_no_active_fault_after_the_lease(
    tmp_path: Path, spawn: Spawn, upstream: int
) -> None:
    s = start(tmp_path, spawn, upstream)
    s.wait_for_injection()
    s.runner.send_signal(signal.SIGKILL)
    s.runner.wait(timeout=5)
    killed_at = time.monotonic()
    assert s.faults(), "the fault outlives the runner until its lease ends"
    while s.faults():
        # one lease, plus slack for a renewal sent just before the kill on a busy machine
        assert time.monotonic() - killed_at < LEASE_S + 1.5, "fault still active after its lease"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signalled_runner_removes_its_fault_and_exits_1(
    tmp_path: Path, spawn: Spawn, upstream: int, sig: signal.Signals
) -> None:
    s = start(tmp_path, spawn, upstream)
    s.wait_for_injection()
    s.runner.send_signal(sig)
    assert s.runner.wait(timeout=20) == 1
    assert not s.faults(), "rollback removes the fault at once, not at the end of the lease"
    records = [json.loads(line) for line in (s.out / "journal.jsonl").read_text().splitlines()]
    (abort,) = [r for r in records if r["kind"] == "abort"]
    assert "interrupted" in abort["reason"]
    assert records[-1]["kind"] == "verdict"
    assert records[-1]["verdict"] == "aborted"
