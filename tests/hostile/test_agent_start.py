"""The agent starts cleanly or says why, and leaves no token file behind."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

from tests.conftest import MLCHAOS, Spawn, first_line


def test_a_taken_port_is_a_clear_error_not_an_internal_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*MLCHAOS, "agent", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 3, done.stderr
    assert f"cannot listen on 127.0.0.1:{port} for the agent's control API" in done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


def test_its_default_token_file_is_named_for_the_agent_and_removed_on_a_clean_exit(
    spawn: Spawn,
) -> None:
    agent = spawn("agent", "serve")
    ready = json.loads(first_line(agent))
    token = Path(ready["token_file"])
    assert token.name.startswith("agent-") and token.exists()
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=15) == 0
    assert not token.exists()
