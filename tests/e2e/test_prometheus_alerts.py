"""Incident response against a real Prometheus: it scrapes the proxy's metrics, evaluates an
alert rule on the experiment arm's error rate, and the runner checks that the alert fires after
injection and resolves after rollback — or fails the run when an expected alert never fires.

Needs Debian's ``prometheus`` (``apt-get install prometheus``); without it the tests skip,
unless ``MLCHAOS_REQUIRE_PROMETHEUS=1`` (set by CI), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import MLCHAOS, ROOT, Spawn, free_port, start_proxy, stop_process

PROMETHEUS = shutil.which("prometheus")
if PROMETHEUS is None and os.environ.get("MLCHAOS_REQUIRE_PROMETHEUS") == "1":
    raise RuntimeError("MLCHAOS_REQUIRE_PROMETHEUS=1 but prometheus is not installed")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (apt-get install prometheus)"
)

RULES = """\
groups:
  - name: mlchaos
    rules:
      - alert: ExperimentArmErrors
        expr: >
          sum by (proxy) (rate(mlchaos_proxy_requests_total{arm="experiment",outcome="error"}[5s]))
          / sum by (proxy) (rate(mlchaos_proxy_requests_total{arm="experiment"}[5s])) > 0.2
        labels: {arm: experiment}
      - alert: ControlArmErrors
        expr: >
          sum by (proxy) (rate(mlchaos_proxy_requests_total{arm="control",outcome="error"}[5s]))
          / sum by (proxy) (rate(mlchaos_proxy_requests_total{arm="control"}[5s])) > 0.2
        labels: {arm: control}
      - alert: NeverFires
        expr: vector(1) > 2
"""


@dataclass
class Stack:
    proxy_listen: int
    proxy_control: int
    token_file: Path
    prometheus: str


@pytest.fixture
def stack(tmp_path: Path, spawn: Spawn, upstream: int) -> Iterator[Stack]:
    proxy = start_proxy(tmp_path, spawn, upstream, name="model")
    listen, control, token_file = proxy.listen, proxy.control, proxy.token_file
    (tmp_path / "rules.yml").write_text(RULES)
    (tmp_path / "prometheus.yml").write_text(f"""\
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{tmp_path / "rules.yml"}"]
scrape_configs:
  - job_name: mlchaos-proxy
    authorization: {{type: Bearer, credentials_file: "{token_file}"}}
    static_configs: [{{targets: ["127.0.0.1:{control}"]}}]
""")
    port = free_port()
    assert PROMETHEUS is not None
    log = (tmp_path / "prometheus.log").open("w")
    prom = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _ready(url) or not _scraped(url):
            assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "prometheus did not start scraping the proxy"
            time.sleep(0.2)
        yield Stack(listen, control, token_file, url)
    finally:
        stop_process(prom)
        log.close()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def _scraped(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/api/v1/query?query=up", timeout=2) as r:
        result = json.loads(r.read())["data"]["result"]
    return any(s["value"][1] == "1" for s in result)


SCRAPED = 'up{job="mlchaos-proxy"}'
CONTROL_ERRORS = (
    'sum(rate(mlchaos_proxy_requests_total{arm="control",outcome="error"}[10s]))'
    ' / sum(rate(mlchaos_proxy_requests_total{arm="control"}[10s]))'
)


def write_experiment(path: Path, s: Stack, expect: str, seconds: int, fault: str) -> Path:
    path.write_text(f"""\
title: the experiment arm's error alert
proxies:
  - name: p
    connect: {{url: "http://127.0.0.1:{s.proxy_control}", token_file: "{s.token_file}"}}
traffic:
  target: http://127.0.0.1:{s.proxy_listen}
  dataset: {ROOT / "examples" / "data" / "toy.csv"}
  rate: 40/s
  duration: {seconds}s
  timeout: 0.5s
  request: {{protocol: v2, model: toy}}
  label: label
  key: entity_id
steady_state:
  - type: promql
    name: proxy scraped
    url: "{s.prometheus}"
    query: '{SCRAPED}'
    op: "=="
    value: 1
faults:
  - {fault}
hypothesis:
  - {{metric: error_rate, arm: control, max: 5%}}
  - type: promql
    name: control error rate per Prometheus under 5%
    url: "{s.prometheus}"
    query: '{CONTROL_ERRORS}'
    op: "<="
    value: 0.05
alerts:
  prometheus: "{s.prometheus}"
  expect:
{expect}
""")
    return path


def run(spec: Path, out: Path) -> tuple[subprocess.CompletedProcess[str], list[dict[str, object]]]:
    done = subprocess.run(
        [*MLCHAOS, "run", str(spec), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    records = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]
    return done, records


def test_the_expected_alert_fires_after_injection_and_resolves_after_rollback(
    tmp_path: Path, stack: Stack
) -> None:
    expect = """\
    - {name: ExperimentArmErrors, labels: {arm: experiment}, fire_within: 10s, resolve_within: 20s}
    - {name: ControlArmErrors, must_not_fire: true}"""
    fault = "{type: abort, target: p, status: 503, start: 1s, duration: 7s}"
    spec = write_experiment(tmp_path / "exp.yaml", stack, expect, 10, fault)
    done, records = run(spec, tmp_path / "out")
    assert done.returncode == 0, done.stdout + done.stderr
    alerts = {r["name"]: r for r in records if r["kind"] == "alert"}
    fired = alerts['ExperimentArmErrors{arm="experiment"}']
    # Scraped every second, a 5 s rate window, evaluated every second: seconds, not zero.
    assert 0.5 < fired["time_to_detect_s"] < 10, fired
    assert 0 < fired["time_to_resolve_s"] < 20, fired
    assert alerts["ControlArmErrors"]["fired_at"] is None
    checks = {r["name"]: r["status"] for r in records if r["kind"] == "check"}
    assert checks['alert ExperimentArmErrors{arm="experiment"} fires within 10s'] == "held"
    assert checks['alert ExperimentArmErrors{arm="experiment"} resolves within 20s'] == "held"
    assert checks["alert ControlArmErrors does not fire"] == "held"
    assert checks["control error rate per Prometheus under 5%"] == "held"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {c["name"] for c in summary["checks"]} >= set(checks)
    assert summary["alerts"][0]["time_to_detect_s"] == fired["time_to_detect_s"]


def test_an_expected_alert_that_never_fires_fails_the_run(tmp_path: Path, stack: Stack) -> None:
    expect = "    - {name: NeverFires, fire_within: 3s}"
    fault = "{type: abort, target: p, status: 503, start: 500ms}"
    spec = write_experiment(tmp_path / "exp.yaml", stack, expect, 4, fault)
    done, records = run(spec, tmp_path / "out")
    assert done.returncode == 1, done.stdout + done.stderr
    (check,) = [r for r in records if r["kind"] == "check" and "NeverFires" in r["name"]]
    assert check["status"] == "violated"
    assert "did not fire" in check["detail"]
    assert "NeverFires" in done.stdout


def test_a_busy_service_by_prometheus_is_refused_before_anything_is_injected(
    tmp_path: Path, stack: Stack
) -> None:
    """The schedule's traffic precondition as a PromQL probe: here the proxy's request count
    must be below 0, which it is not — the run stops at preflight, with nothing injected."""
    expect = "    - {name: NeverFires, fire_within: 3s}"
    fault = "{type: abort, target: p, status: 503}"
    spec = write_experiment(tmp_path / "exp.yaml", stack, expect, 2, fault)
    spec.write_text(
        spec.read_text()
        + f"""\
schedule:
  windows: ["00:00-12:00", "12:00-00:00"]  # always open
  precondition:
    type: promql
    name: quiet enough
    url: "{stack.prometheus}"
    query: 'sum(mlchaos_proxy_requests_total)'
    op: "<"
    value: 0
"""
    )
    done, records = run(spec, tmp_path / "out")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "the traffic precondition 'quiet enough' does not hold" in done.stdout
    assert not [r for r in records if r["kind"] == "fault"]
