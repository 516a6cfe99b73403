"""Faults per arm on gRPC traffic: a TCP proxy in front of MLServer's gRPC port with one listener
per arm (``serve.arm_listen``), the replay sending each arm's requests to its own listener
(``traffic.arm_targets``). Connection resets on the experiment listener fail the experiment
arm's calls; the control arm, on its own listener, is untouched."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import MLCHAOS, free_port
from tests.servers.conftest import MODEL, ModelServer


@pytest.mark.slow
def test_a_reset_on_the_experiment_listener_fails_only_experiment_grpc_calls(
    mlserver: ModelServer, tmp_path: Path
) -> None:
    main, experiment, control = free_port(), free_port(), free_port()
    upstream = mlserver.grpc.removeprefix("grpc://")
    spec = {
        "title": "gRPC resets stay in the experiment arm",
        "proxies": [
            {
                "name": "grpc-proxy",
                "serve": {
                    "protocol": "tcp",
                    "listen": f"127.0.0.1:{main}",
                    "upstream": upstream,
                    "arm_listen": {
                        "experiment": f"127.0.0.1:{experiment}",
                        "control": f"127.0.0.1:{control}",
                    },
                },
            }
        ],
        "traffic": {
            "target": f"grpc://127.0.0.1:{main}",
            "arm_targets": {
                "experiment": f"grpc://127.0.0.1:{experiment}",
                "control": f"grpc://127.0.0.1:{control}",
            },
            "dataset": str(mlserver.rows),
            "rate": "60/s",
            "duration": "12s",
            "timeout": "1s",
            "label": "target",
            "request": {
                "protocol": "v2-grpc",
                "model": MODEL,
                "datatype": "FP64",
                "input_name": "features",
                "inputs": [c for c in _header(mlserver) if c not in ("row_id", "target")],
            },
        },
        "faults": [
            {
                "type": "reset",
                "target": "grpc-proxy",
                "arm": "experiment",
                "start": "2s",
                "duration": "8s",
            }
        ],
        "hypothesis": [
            {"name": "control untouched", "metric": "error_rate", "arm": "control", "max": "2%"},
            {"name": "experiment calls fail", "metric": "error_rate", "min": "80%"},
            {"name": "control accurate", "metric": "accuracy", "arm": "control", "min": "80%"},
        ],
    }
    path = tmp_path / "grpc.yaml"
    path.write_text(yaml.safe_dump(spec))
    run = subprocess.run(
        [*MLCHAOS, "run", str(path), "--quiet", "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    (hits,) = [f["hits"] for f in summary["faults"] if f["event"] == "removed"]
    assert hits["experiment"] > 0 and hits["control"] == 0 and hits["none"] == 0, hits


def _header(server: ModelServer) -> list[str]:
    return server.rows.read_text().splitlines()[0].split(",")
