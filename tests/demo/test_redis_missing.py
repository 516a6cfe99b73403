"""Without redis-server installed, the demo's redis service says how to install it (exit 3)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_redis_service_names_the_missing_package_and_exits_3() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mlchaos.demo", "redis", "--port", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": "/nonexistent"},
        timeout=30,
        check=False,
    )
    assert done.returncode == 3
    assert "apt-get install redis-server" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
