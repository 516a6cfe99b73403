"""A paused process is resumed by the agent's lease when the runner is killed with SIGKILL.

Real processes: the demo's feature store and pipeline, a separately running agent, the toy
model as the traffic target, and a runner whose experiment pauses the pipeline for a minute
under a 1 s lease.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, Spawn

LEASE_S = 1.0

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process faults target Linux")


def ready_line(proc: subprocess.Popen[str]) -> dict[str, object]:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("{"):
            info: dict[str, object] = json.loads(line)
            return info
    raise AssertionError(f"no ready line; exit {proc.wait()}")


@pytest.fixture
def demo_service() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()


def start(procs: list[subprocess.Popen[str]], *args: str) -> dict[str, object]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlchaos.demo", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    procs.append(proc)
    return ready_line(proc)


def health(port: object) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
        body: dict[str, object] = json.loads(r.read())
        return body


def test_a_pipeline_paused_by_a_sigkilled_runner_resumes_within_the_lease(
    tmp_path: Path, spawn: Spawn, upstream: int, demo_service: list[subprocess.Popen[str]]
) -> None:
    store = start(demo_service, "store", "--db", str(tmp_path / "store.db"))
    pipeline = start(demo_service, "pipeline", "--store", f"http://127.0.0.1:{store['port']}")
    pipeline_pid = demo_service[-1].pid
    (tmp_path / "pipeline.pid").write_text(str(pipeline_pid))
    agent_proc = spawn("agent", "serve", "--token-file", str(tmp_path / "agent.token"))
    agent = ready_line(agent_proc)
    (tmp_path / "exp.yaml").write_text(f"""\
title: pipeline paused, runner killed
agents:
  - name: a
    connect: {{url: "{agent["control"]}", token_file: "{tmp_path / "agent.token"}"}}
traffic:
  target: http://127.0.0.1:{upstream}
  dataset: {ROOT / "examples" / "data" / "toy.csv"}
  rate: 20/s
  duration: 60s
  request: {{protocol: v2, model: toy}}
  label: label
  key: entity_id
faults:
  - {{type: pause, target: a, process: {{pidfile: pipeline.pid}}, start: 0s}}
hypothesis:
  - {{metric: error_rate, arm: control, max: 5%}}
lease: {LEASE_S:g}s
""")
    runner = spawn("run", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "out"), "--quiet")
    deadline = time.monotonic() + 30
    while psutil.Process(pipeline_pid).status() != psutil.STATUS_STOPPED:
        assert runner.poll() is None, runner.communicate()[0]
        assert time.monotonic() < deadline, "the runner never paused the pipeline"
        time.sleep(0.05)
    time.sleep(2 * LEASE_S)  # renewals keep it paused past one lease
    assert psutil.Process(pipeline_pid).status() == psutil.STATUS_STOPPED

    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=5)
    killed_at = time.monotonic()
    while psutil.Process(pipeline_pid).status() == psutil.STATUS_STOPPED:
        # one lease, plus slack for a renewal sent just before the kill on a busy machine
        assert time.monotonic() - killed_at < LEASE_S + 1.5, "still paused after the lease"
        time.sleep(0.05)
    writes = health(pipeline["port"])["writes"]
    time.sleep(1.0)
    assert health(pipeline["port"])["writes"] > writes  # it really works again
