"""Every fault accounted for, end to end: a router that drops the arm header leaves an
arm-targeted fault hitting nothing, and the run says so instead of blaming the service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import MLCHAOS, ROOT, Spawn, first_line, start_proxy


def test_a_router_that_drops_the_arm_header_makes_the_fault_never_fire(
    tmp_path: Path, spawn: Spawn, upstream: int
) -> None:
    proxy = start_proxy(tmp_path, spawn, upstream)
    router = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "e2e" / "_router.py"), str(proxy.listen)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(first_line(router).split()[1])
        spec = tmp_path / "exp.yaml"
        spec.write_text(
            f"""
title: abort behind a router
proxies:
  - name: model-proxy
    connect: {{url: "http://127.0.0.1:{proxy.control}", token_file: "{proxy.token_file}"}}
traffic:
  target: http://127.0.0.1:{port}
  dataset: {ROOT / "examples" / "data" / "toy.csv"}
  rate: 60/s
  duration: 5s
  timeout: 1s
  request: {{protocol: v2, model: toy}}
  label: label
  key: entity_id
faults:
  - {{type: abort, target: model-proxy, status: 503, arm: experiment, start: 0.5s, duration: 4s}}
hypothesis:
  - name: experiment error rate bounded
    metric: error_rate
    relative_to: control
    max: 50%
"""
        )
        out = tmp_path / "out"
        proc = subprocess.run(
            [*MLCHAOS, "run", str(spec), "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        router.terminate()
        router.wait(timeout=10)
        assert router.stdout is not None
        router.stdout.close()
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    summary = json.loads((out / "summary.json").read_text())
    (reach,) = summary["reach"]
    assert reach["hits"] == 0 and reach["requests"] > 50 and reach["never_fired"], reach
    check, split = summary["checks"]
    assert check["status"] == "unsure" and split["status"] == "held"
    assert "fault never fired" in check["detail"]
    assert "it never fired" in output  # the terminal summary says so
    assert "is not firing" in output  # and the live display warned as it happened
    records = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]
    (removed,) = [r for r in records if r.get("event") == "removed"]
    assert removed["hits"] == {"none": 0, "experiment": 0, "control": 0}
    for fmt, said in (("markdown", "it never fired"), ("junit", "(it never fired)")):
        report = subprocess.run(
            [*MLCHAOS, "report", str(out), "--format", fmt],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "hit 0 requests" in report.stdout and said in report.stdout, report.stdout
