"""``mlchaos init`` against a real KServe ModelServer, in both of its HTTP protocols: the file
it writes validates and runs, and the abort-the-experiment-arm experiment in it holds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import MLCHAOS
from tests.servers.conftest import MODEL, ModelServer


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_init_writes_a_kserve_experiment_that_runs_and_holds(
    kserve: ModelServer, protocol: str, tmp_path: Path
) -> None:
    out = tmp_path / "experiment.yaml"
    init = subprocess.run(
        [
            *MLCHAOS,
            "init",
            "--model-url",
            kserve.http,
            "--model",
            MODEL,
            "--protocol",
            protocol,
            "--dataset",
            str(kserve.rows),
            "--key",
            "row_id",
            "--duration",
            "20",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stderr
    written = yaml.safe_load(out.read_text())
    assert written["traffic"]["request"]["protocol"] == protocol
    assert written["traffic"]["label"] == "target"  # found by its name
    if protocol == "v1":
        assert written["traffic"]["extract"] == {"model": None}  # v1 answers name no model
    else:  # KServe's metadata lists no inputs: the 30 numeric columns as one FP64 tensor
        assert written["traffic"]["request"]["datatype"] == "FP64"
    run = subprocess.run(
        [*MLCHAOS, "run", str(out), "--quiet", "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "verdict: HELD" in run.stdout
