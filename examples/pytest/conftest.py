"""The model service for these tests: mlchaos's toy model (OIP v2), as a process of its own."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def model_server() -> Iterator[str]:
    """``host:port`` of a running model server."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlchaos", "upstream", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    found = re.search(r"http://(127\.0\.0\.1:\d+)", proc.stdout.readline())
    assert found is not None, "the model server did not start"
    yield found[1]
    proc.terminate()
    proc.wait()
    proc.stdout.close()
