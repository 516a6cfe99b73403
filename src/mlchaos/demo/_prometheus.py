"""Prometheus and Alertmanager for the demo's alert validation: servers, configs, alert rules.

``python -m mlchaos.demo prometheus --dir DIR --target NAME=HOST:PORT:TOKEN_FILE ...
[--alertmanager HOST:PORT]`` writes a configuration that scrapes each proxy's control API
(``/metrics``, with its bearer token file) every second, alert rules on the replicas' error
ratio per arm, and (with ``--alertmanager``) where to send the alerts, then runs Debian's
``prometheus`` on a free loopback port — announced once it has scraped every target — until
SIGTERM/SIGINT.

``python -m mlchaos.demo alertmanager --dir DIR --webhook HOST:PORT`` runs Debian's
``prometheus-alertmanager`` (no cluster port) with one route: alerts labelled
``team="ml-platform"`` go to the receiver ``ml-platform-pager``, a webhook to HOST:PORT (where
the experiment's run listens), after a 1 s ``group_wait`` (30 s by default); everything else
goes to ``nobody``, which notifies no one.

Rules (evaluated every second, over a 5 s rate window):

- ``ReplicaErrors{arm="experiment"}`` / ``ReplicaErrors{arm="control"}``: more than 20% of the
  calls through a replica proxy in that arm fail. The resilient gateway masks such failures
  from its callers (retry, fallback): the alert is how operators learn of them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mlchaos.demo._child import serve_child
from mlchaos.demo._serve import HOST, ServeError, free_port

__all__ = [
    "alertmanager_config",
    "prometheus_config",
    "rules",
    "serve_alertmanager",
    "serve_prometheus",
]


def rules() -> str:
    """The alert rules file: ``ReplicaErrors`` for each arm."""
    out = ["groups:", "  - name: mlchaos-demo", "    rules:"]
    for arm in ("experiment", "control"):
        calls = f'mlchaos_proxy_requests_total{{proxy=~"replica-.*",arm="{arm}"'
        out += [
            "      - alert: ReplicaErrors",
            "        expr: >",
            f'          sum by (proxy) (rate({calls},outcome="error"}}[5s]))',
            f"          / sum by (proxy) (rate({calls}}}[5s])) > 0.2",
            f"        labels: {{arm: {arm}, team: ml-platform}}",
        ]
    return "\n".join(out) + "\n"


def prometheus_config(
    targets: dict[str, tuple[str, Path]], rules: Path, alertmanager: str | None = None
) -> str:
    """A scrape job per proxy (each has its own token): name → (host:port, token file); alerts
    go to ``alertmanager`` (host:port) when given."""
    jobs = "".join(
        f"  - job_name: {name}\n"
        f'    authorization: {{type: Bearer, credentials_file: "{token}"}}\n'
        f'    static_configs: [{{targets: ["{address}"]}}]\n'
        for name, (address, token) in targets.items()
    )
    alerting = ""
    if alertmanager is not None:
        sends = f'[{{static_configs: [{{targets: ["{alertmanager}"]}}]}}]'
        alerting = f"alerting: {{alertmanagers: {sends}}}\n"
    return (
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f'rule_files: ["{rules}"]\n{alerting}'
        f"scrape_configs:\n{jobs}"
    )


def alertmanager_config(webhook: str) -> str:
    """Pages for the ML platform team to the webhook at ``webhook`` (host:port), quickly."""
    return (
        "route:\n"
        "  receiver: nobody\n"
        "  group_by: [alertname, arm]\n"
        "  group_wait: 1s\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "  routes:\n"
        "    - {matchers: ['team=\"ml-platform\"'], receiver: ml-platform-pager}\n"
        "receivers:\n"
        "  - name: nobody\n"
        "  - name: ml-platform-pager\n"
        f'    webhook_configs: [{{url: "http://{webhook}/", send_resolved: true}}]\n'
    )


async def serve_alertmanager(directory: Path, webhook: str, port: int) -> None:
    """Run prometheus-alertmanager on ``port`` (0: a free one) until SIGTERM or SIGINT."""
    binary = alertmanager_binary()
    if binary is None:
        raise ServeError(
            "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
        )
    config = _write_alertmanager_config(directory, webhook)
    port = port or free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.path={directory / 'data'}",
        f"--web.listen-address={HOST}:{port}",
        "--cluster.listen-address=",  # no gossip port on every interface
        "--log.level=warn",
    ]
    await serve_child("alertmanager", argv, port, lambda: _ready(port), 30.0)


def _write_alertmanager_config(directory: Path, webhook: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "alertmanager.yml"
    config.write_text(alertmanager_config(webhook))
    return config


def alertmanager_binary() -> str | None:
    """Debian's prometheus-alertmanager, or an upstream alertmanager on the PATH."""
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


async def _ready(port: int) -> bool:
    import aiohttp  # noqa: PLC0415

    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session,
            session.get(f"http://{HOST}:{port}/-/ready") as resp,
        ):
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def serve_prometheus(
    directory: Path,
    targets: dict[str, tuple[str, Path]],
    port: int,
    alertmanager: str | None = None,
) -> None:
    """Run prometheus on ``port`` (0: a free one) until SIGTERM or SIGINT."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise ServeError("prometheus is not installed (Debian/Ubuntu: apt-get install prometheus)")
    config = _write_config(directory, targets, alertmanager)
    port = port or free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'tsdb'}",
        f"--web.listen-address={HOST}:{port}",
        "--log.level=warn",
    ]
    await serve_child("prometheus", argv, port, lambda: _scraping(port, len(targets)), 30.0)


def _write_config(
    directory: Path, targets: dict[str, tuple[str, Path]], alertmanager: str | None
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rules_file = directory / "rules.yml"
    rules_file.write_text(rules())
    config = directory / "prometheus.yml"
    config.write_text(prometheus_config(targets, rules_file, alertmanager))
    return config


async def _scraping(port: int, targets: int) -> bool:
    """Ready once every target has been scraped successfully (``up`` is 1 for each)."""
    import aiohttp  # noqa: PLC0415

    url = f"http://{HOST}:{port}/api/v1/query"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session,
            session.get(url, params={"query": "up == 1"}) as resp,
        ):
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return False
    try:
        return len(body["data"]["result"]) >= targets
    except (KeyError, TypeError):
        return False
