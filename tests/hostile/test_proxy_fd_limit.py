"""At its open-file limit the proxy keeps its control API: clients beyond the connection limit
(bounded by that limit) get 503, while faults can still be listed and removed."""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import urllib.request
from pathlib import Path

from tests.conftest import MLCHAOS, first_line

NOFILE = 256


def _low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def test_idle_connections_up_to_the_fd_limit_do_not_lock_out_the_control_api(
    tmp_path: Path, upstream: int
) -> None:
    """1,007 idle connections at `ulimit -n 1024` once locked out every new client and the
    control API; here 300 at a limit of 256."""
    token = tmp_path / "t"
    config = tmp_path / "p.json"
    config.write_text(
        json.dumps(
            {
                "listen": "127.0.0.1:0",
                "upstream": f"127.0.0.1:{upstream}",
                "control": {"listen": "127.0.0.1:0", "token_file": str(token)},
            }
        )
    )
    proxy = subprocess.Popen(
        [*MLCHAOS, "proxy", "serve", "--config", str(config), "--announce"],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_low_nofile,  # noqa: PLW1509 - setrlimit only, before exec
    )
    idle: list[socket.socket] = []
    try:
        ready = json.loads(first_line(proxy))
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", ready["port"]), timeout=5)
            idle.append(s)
        last = idle[-1]
        last.settimeout(5)
        assert last.recv(64).startswith(b"HTTP/1.1 503"), "beyond the limit: 503"
        request = urllib.request.Request(
            f"{ready['control']}/health",
            headers={"Authorization": f"Bearer {token.read_text().strip()}"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.loads(answer.read())["status"] == "ok"
    finally:
        for s in idle:
            s.close()
        proxy.terminate()
        proxy.wait(timeout=10)
        assert proxy.stdout is not None
        proxy.stdout.close()
