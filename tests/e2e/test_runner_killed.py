"""Killing the runner with SIGKILL mid-experiment leaves no fault behind once the lease passes."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path

from tests.conftest import ROOT, Spawn, free_port, wait_for_port


def list_faults(control: int, token: str) -> list[object]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{control}/faults", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        body = json.loads(resp.read())
    faults = body["faults"]
    assert isinstance(faults, list)
    return faults


def test_sigkilled_runner_leaves_no_active_fault_after_the_lease(
    tmp_path: Path, spawn: Spawn, upstream: int
) -> None:
    listen, control = free_port(), free_port()
    token_file = tmp_path / "proxy.token"
    (tmp_path / "proxy.yaml").write_text(
        f"protocol: http\nlisten: 127.0.0.1:{listen}\nupstream: 127.0.0.1:{upstream}\n"
        f"control: {{listen: 127.0.0.1:{control}, token_file: {token_file}}}\n"
    )
    spawn("proxy", "serve", "--config", str(tmp_path / "proxy.yaml"))
    wait_for_port(control)
    token = token_file.read_text().strip()

    lease_s = 1.0
    (tmp_path / "exp.yaml").write_text(f"""\
title: killed mid-run
proxies:
  - name: p
    connect: {{url: "http://127.0.0.1:{control}", token_file: "{token_file}"}}
traffic:
  target: http://127.0.0.1:{listen}
  dataset: {ROOT / "examples" / "data" / "toy.csv"}
  rate: 20/s
  duration: 60s
  request: {{protocol: v2, model: toy}}
faults:
  - {{type: abort, target: p, status: 503}}
hypothesis:
  - {{metric: error_rate, arm: control, max: 5%}}
lease: {lease_s:g}s
""")
    runner = spawn("run", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "out"), "--quiet")

    def experiment_faults() -> list[object]:  # not the preflight rehearsal's 0% copy
        return [f for f in list_faults(control, token) if not str(f["id"]).endswith("-preflight")]  # type: ignore[index]

    deadline = time.monotonic() + 30
    while not experiment_faults():
        assert runner.poll() is None, runner.stdout.read() if runner.stdout else ""
        assert time.monotonic() < deadline, "the runner never injected its fault"
        time.sleep(0.05)

    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=5)
    killed_at = time.monotonic()
    assert list_faults(control, token), "the fault should outlive the runner until its lease ends"

    while list_faults(control, token):
        assert time.monotonic() - killed_at < lease_s + 1.0, "fault still active after its lease"
        time.sleep(0.05)
    gone_after = time.monotonic() - killed_at
    assert gone_after <= lease_s + 1.0
