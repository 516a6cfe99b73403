"""Prometheus for the demo's alert validation: the server, its scrape config and alert rules.

``python -m mlchaos.demo prometheus --dir DIR --target NAME=HOST:PORT:TOKEN_FILE ...`` writes a
configuration that scrapes each proxy's control API (``/metrics``, with its bearer token file)
every second, and alert rules on the replicas' error ratio per arm, then runs Debian's
``prometheus`` on a free loopback port — announced once it has scraped every target — until
SIGTERM/SIGINT.

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

__all__ = ["prometheus_config", "rules", "serve_prometheus"]


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
            f"        labels: {{arm: {arm}}}",
        ]
    return "\n".join(out) + "\n"


def prometheus_config(targets: dict[str, tuple[str, Path]], rules: Path) -> str:
    """A scrape job per proxy (each has its own token): name → (host:port, token file)."""
    jobs = "".join(
        f"  - job_name: {name}\n"
        f'    authorization: {{type: Bearer, credentials_file: "{token}"}}\n'
        f'    static_configs: [{{targets: ["{address}"]}}]\n'
        for name, (address, token) in targets.items()
    )
    return (
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f'rule_files: ["{rules}"]\n'
        f"scrape_configs:\n{jobs}"
    )


async def serve_prometheus(
    directory: Path, targets: dict[str, tuple[str, Path]], port: int
) -> None:
    """Run prometheus on ``port`` (0: a free one) until SIGTERM or SIGINT."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise ServeError("prometheus is not installed (Debian/Ubuntu: apt-get install prometheus)")
    config = _write_config(directory, targets)
    port = port or free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'tsdb'}",
        f"--web.listen-address={HOST}:{port}",
        "--log.level=warn",
    ]
    await serve_child("prometheus", argv, port, lambda: _scraping(port, len(targets)), 30.0)


def _write_config(directory: Path, targets: dict[str, tuple[str, Path]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rules_file = directory / "rules.yml"
    rules_file.write_text(rules())
    config = directory / "prometheus.yml"
    config.write_text(prometheus_config(targets, rules_file))
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
