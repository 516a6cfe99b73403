"""``notify`` checks against a real Alertmanager: Prometheus fires the alert and sends it to
Alertmanager, whose routes deliver it (grouped, after ``group_wait``) to the run's webhook
receiver; the run judges time to notify beside time to fire, the receiver, and the resolved
notification after rollback — and a silence or a route that swallows the page fails the check
with Alertmanager's reason.

Needs Debian's ``prometheus`` and ``prometheus-alertmanager``; without them the tests skip,
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

from tests.conftest import Spawn, free_port, start_proxy, stop_process
from tests.e2e.test_prometheus_alerts import (
    PROMETHEUS,
    Stack,
    _scraped,
    run,
    write_experiment,
)

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
if ALERTMANAGER is None and os.environ.get("MLCHAOS_REQUIRE_PROMETHEUS") == "1":
    raise RuntimeError("MLCHAOS_REQUIRE_PROMETHEUS=1 but prometheus-alertmanager is not installed")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or ALERTMANAGER is None,
    reason="prometheus and prometheus-alertmanager are not installed (apt-get install them)",
)

# The same error ratio twice: one alert for the on-call pager, one for the ticket queue.
_CALLS = 'mlchaos_proxy_requests_total{arm="experiment"'
RULES = "groups:\n  - name: mlchaos\n    rules:\n" + "".join(
    f"""\
      - alert: {name}
        expr: >
          sum by (proxy) (rate({_CALLS},outcome="error"}}[5s]))
          / sum by (proxy) (rate({_CALLS}}}[5s])) > 0.2
        labels: {{arm: experiment, severity: {severity}, team: ml-platform}}
"""
    for name, severity in (("ExperimentArmErrors", "page"), ("ExperimentArmTicket", "ticket"))
)


@dataclass
class AmStack(Stack):
    alertmanager: str
    webhook: int


def _start(argv: list[str], log: Path, ready: str) -> subprocess.Popen[bytes]:
    with log.open("w") as err:  # the child keeps its own descriptor
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(ready, timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"{argv[0]} did not get ready: {log.read_text()}"
        time.sleep(0.2)


@pytest.fixture
def stack(tmp_path: Path, spawn: Spawn, upstream: int) -> Iterator[AmStack]:
    assert PROMETHEUS is not None and ALERTMANAGER is not None
    proxy = start_proxy(tmp_path, spawn, upstream, name="model")
    webhook, am_port, prom_port = free_port(), free_port(), free_port()
    hook = f'webhook_configs: [{{url: "http://127.0.0.1:{webhook}/", send_resolved: true}}]'
    (tmp_path / "alertmanager.yml").write_text(f"""\
route:
  receiver: nobody
  group_by: [alertname, arm]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - {{matchers: ['severity="page"', 'team="ml-platform"'], receiver: ml-platform-pager}}
    - {{matchers: ['severity="ticket"'], receiver: tickets}}
receivers:
  - name: nobody
  - name: ml-platform-pager
    {hook}
  - name: tickets
    {hook}
""")
    (tmp_path / "rules.yml").write_text(RULES)
    (tmp_path / "prometheus.yml").write_text(f"""\
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{tmp_path / "rules.yml"}"]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]}}]
scrape_configs:
  - job_name: mlchaos-proxy
    authorization: {{type: Bearer, credentials_file: "{proxy.token_file}"}}
    static_configs: [{{targets: ["127.0.0.1:{proxy.control}"]}}]
""")
    am_url, prom_url = f"http://127.0.0.1:{am_port}", f"http://127.0.0.1:{prom_port}"
    procs = []
    try:
        procs.append(
            _start(
                [
                    ALERTMANAGER,
                    f"--config.file={tmp_path / 'alertmanager.yml'}",
                    f"--storage.path={tmp_path / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",  # no gossip port on every interface
                    "--log.level=warn",
                ],
                tmp_path / "alertmanager.log",
                f"{am_url}/-/ready",
            )
        )
        procs.append(
            _start(
                [
                    PROMETHEUS,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--log.level=warn",
                ],
                tmp_path / "prometheus.log",
                f"{prom_url}/-/ready",
            )
        )
        deadline = time.monotonic() + 30
        while not _scraped(prom_url):
            assert time.monotonic() < deadline, "prometheus did not start scraping the proxy"
            time.sleep(0.2)
        yield AmStack(proxy.listen, proxy.control, proxy.token_file, prom_url, am_url, webhook)
    finally:
        for proc in procs:
            stop_process(proc)


def experiment(tmp_path: Path, s: AmStack, expect: str) -> Path:
    fault = "{type: abort, target: p, status: 503, start: 1s, duration: 6s}"
    spec = write_experiment(tmp_path / "exp.yaml", s, expect, 8, fault)
    text = spec.read_text().replace(
        "alerts:\n",
        f'alerts:\n  alertmanager: "{s.alertmanager}"\n  webhook: 127.0.0.1:{s.webhook}\n',
    )
    spec.write_text(text)
    return spec


def test_the_page_reaches_its_receiver_and_the_resolution_follows(
    tmp_path: Path, stack: AmStack
) -> None:
    expect = """\
    - name: ExperimentArmErrors
      labels: {arm: experiment}
      fire_within: 10s
      resolve_within: 20s
      notify: {receiver: ml-platform-pager, within: 15s, resolved_within: 20s}"""
    done, records = run(experiment(tmp_path, stack, expect), tmp_path / "out")
    assert done.returncode == 0, done.stdout + done.stderr
    [alert] = [r for r in records if r["kind"] == "alert"]
    assert alert["notify_receiver"] == "ml-platform-pager"
    # It fires (seconds: a 5 s window scraped every second), then group_wait (1 s) passes.
    assert 0 < alert["time_to_detect_s"] <= alert["time_to_notify_s"] < 15, alert
    assert 0 < alert["time_to_notify_resolved_s"] < 20, alert
    assert alert["notified_elsewhere"] == [], "the ticket route is another alert's"
    checks = {r["name"]: r for r in records if r["kind"] == "check"}
    name = 'alert ExperimentArmErrors{arm="experiment"}'
    paged = checks[f"{name} notifies 'ml-platform-pager' within 15s"]
    assert paged["status"] == "held" and "notified" in paged["detail"], paged
    resolved = checks[f"{name}: resolved notification to 'ml-platform-pager' within 20s"]
    assert resolved["status"] == "held", resolved


def test_a_silence_or_a_route_elsewhere_fails_the_check_with_the_reason(
    tmp_path: Path, stack: AmStack
) -> None:
    silence = {
        "matchers": [{"name": "alertname", "value": "ExperimentArmErrors", "isRegex": False}],
        "startsAt": "2000-01-01T00:00:00Z",
        "endsAt": "2100-01-01T00:00:00Z",
        "createdBy": "on-call",
        "comment": "maintenance window",
    }
    request = urllib.request.Request(
        f"{stack.alertmanager}/api/v2/silences",
        data=json.dumps(silence).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as r:
        assert r.status == 200
    expect = """\
    - name: ExperimentArmErrors
      labels: {arm: experiment}
      fire_within: 10s
      notify: {receiver: ml-platform-pager, within: 12s}
    - name: ExperimentArmTicket
      fire_within: 10s
      notify: {receiver: ml-platform-pager, within: 12s}"""
    done, records = run(experiment(tmp_path, stack, expect), tmp_path / "out")
    assert done.returncode == 1, done.stdout + done.stderr
    checks = {r["name"]: r for r in records if r["kind"] == "check"}
    fired = checks['alert ExperimentArmErrors{arm="experiment"} fires within 10s']
    assert fired["status"] == "held", "Prometheus fires it: only the page is swallowed"
    silenced = checks[
        "alert ExperimentArmErrors{arm=\"experiment\"} notifies 'ml-platform-pager' within 12s"
    ]
    assert silenced["status"] == "violated"
    assert "silenced by silence" in silenced["detail"], silenced
    assert "maintenance window" in silenced["detail"] and "on-call" in silenced["detail"]
    ticket = checks["alert ExperimentArmTicket notifies 'ml-platform-pager' within 12s"]
    assert ticket["status"] == "violated"
    assert "notified tickets instead" in ticket["detail"], ticket
    assert "routes it to 'tickets', not 'ml-platform-pager'" in ticket["detail"], ticket
