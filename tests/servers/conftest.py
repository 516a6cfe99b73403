"""Real model servers for the tests: Seldon MLServer (with its scikit-learn runtime) and a KServe
ModelServer, each from its own virtual environment (``.venv-mlserver``, ``.venv-kserve``, made
by ``make test``), so their dependencies never meet mlchaos's.

Each serves a small scikit-learn model trained at test time (``train.py``) on a dataset bundled
with scikit-learn. Tests that need a server skip, naming why, where it is missing, and fail
instead when ``MLCHAOS_REQUIRE_MLSERVER=1`` / ``MLCHAOS_REQUIRE_KSERVE=1`` (CI).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlchaos.observations import key_code
from tests.conftest import ROOT, free_port

EXAMPLE = ROOT / "examples" / "your-service"
MODEL = "cancer"


@dataclass(frozen=True)
class ModelServer:
    """A running model server and what the tests know independently of it."""

    http: str
    """http://127.0.0.1:PORT"""
    grpc: str
    """grpc://127.0.0.1:PORT"""
    work: Path
    expected: dict[str, list[float]]
    """scikit-learn's own answers for rows.csv: predict, proba, labels"""

    @property
    def rows(self) -> Path:
        return self.work / "rows.csv"

    def predicted_by_key(self) -> dict[int, float]:
        """sklearn's prediction of each row, by the key code of its row_id."""
        return {key_code(str(i)): p for i, p in enumerate(self.expected["predict"])}


def venv_python(name: str) -> Path:
    """The Python of ``.venv-NAME``; skip (or fail where required) when it is missing."""
    python = Path(os.environ.get(f"MLCHAOS_{name.upper()}_VENV", ROOT / f".venv-{name}")) / "bin"
    python /= "python"
    if not python.exists():
        why = f"{name} is not installed at {python.parent.parent} (make test installs it)"
        if os.environ.get(f"MLCHAOS_REQUIRE_{name.upper()}") == "1":
            pytest.fail(f"MLCHAOS_REQUIRE_{name.upper()}=1 but {why}")
        pytest.skip(why)
    return python


def train(python: Path, work: Path) -> dict[str, list[float]]:
    subprocess.run([str(python), str(EXAMPLE / "train.py"), str(work)], check=True)
    expected: dict[str, list[float]] = json.loads((work / "expected.json").read_text())
    return expected


def wait_ready(url: str, server: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    """Until ``url`` answers 200; fail with the server's log if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"not ready within {timeout:.0f} s: {url}\n{log.read_text()[-3000:]}")


def stop(server: subprocess.Popen[bytes]) -> None:
    """Stop the server and every process it started (its own process group)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def serving(
    argv: list[str], work: Path, http: int, grpc: int, expected: dict[str, list[float]]
) -> Iterator[ModelServer]:
    """Run the server ``argv`` (its log in ``work``) until the model is ready; the server, then
    stopped with every process it started."""
    log = work / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_ready(f"http://127.0.0.1:{http}/v2/models/{MODEL}/ready", server, log)
        yield ModelServer(f"http://127.0.0.1:{http}", f"grpc://127.0.0.1:{grpc}", work, expected)
    finally:
        stop(server)


@pytest.fixture(scope="module")
def mlserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    python = venv_python("mlserver")
    work = tmp_path_factory.mktemp("mlserver")
    expected = train(python, work)
    http, grpc, metrics = free_port(), free_port(), free_port()
    # The example's settings (docs/your-service.md), on ports free here.
    settings = json.loads((EXAMPLE / "mlserver" / "settings.json").read_text())
    settings |= {"http_port": http, "grpc_port": grpc, "metrics_port": metrics}
    (work / "settings.json").write_text(json.dumps(settings))
    shutil.copy(EXAMPLE / "mlserver" / "model-settings.json", work)
    argv = [str(python.parent / "mlserver"), "start", str(work)]
    yield from serving(argv, work, http, grpc, expected)


@pytest.fixture(scope="module")
def kserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    python = venv_python("kserve")
    work = tmp_path_factory.mktemp("kserve")
    expected = train(python, work)
    http, grpc = free_port(), free_port()
    argv = [
        str(python),
        str(EXAMPLE / "kserve_model.py"),
        f"--model_name={MODEL}",
        f"--model_path={work / 'model.joblib'}",
        f"--http_port={http}",
        f"--grpc_port={grpc}",
    ]
    yield from serving(argv, work, http, grpc, expected)
