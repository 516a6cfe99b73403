"""``mlchaos export --format chaostoolkit``: what carries over, what does not (and says so), and
one clear error when nothing of the faults can."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlchaos.cli import main
from tests.conftest import ROOT

SPEC = """\
title: exported
description: a proxy that runs, an agent fault, and checks of several kinds
proxies:
  - name: p
    connect: {{url: "http://127.0.0.1:9901", token_file: token}}
agents:
  - name: a
    connect: {{url: "http://127.0.0.1:9902", token_file: token}}
traffic:
  target: http://127.0.0.1:9903
  dataset: {dataset}
  rate: 50/s
  duration: 10s
  request: {{protocol: v2, model: toy}}
  key: entity_id
  label: label
steady_state:
  - {{name: ready, url: "http://127.0.0.1:9900/v2/health/ready"}}
faults:
  - {{type: abort, target: p, status: 503, arm: experiment, probability: 20%, start: 1s}}
  - {{type: pause, target: a, process: {{pidfile: x.pid}}}}
hypothesis:
  - {{name: control untouched, metric: error_rate, arm: control, max: 2%}}
  - {{name: within 35 points, metric: error_rate, relative_to: control, max: 35%}}
  - {{name: accuracy, metric: accuracy, relative_to: control, min: -5%}}
rollback:
  - {{name: restart, url: "http://127.0.0.1:9904/restart"}}
"""


def test_what_carries_over_and_what_is_said_to_be_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "exp.yaml"
    spec.write_text(SPEC.format(dataset=ROOT / "examples" / "data" / "toy.csv"))
    (tmp_path / "token").write_text("t\n")
    assert main(["export", "--format", "chaostoolkit", str(spec)]) == 0
    said = capsys.readouterr()
    doc = json.loads(said.out)
    probes = doc["steady-state-hypothesis"]["probes"]
    assert [p["name"] for p in probes] == ["ready", "control untouched", "within 35 points"]
    assert probes[0]["provider"] == {
        "type": "http",
        "url": "http://127.0.0.1:9900/v2/health/ready",
        "timeout": 2.0,
    }
    measure = probes[2]["provider"]
    assert measure["func"] == "send_requests" and measure["arguments"]["requests"] == 500
    assert measure["arguments"]["url"] == "http://127.0.0.1:9903/v2/models/toy/infer"
    assert len(measure["arguments"]["bodies"]) == 50
    assert probes[2]["tolerance"]["provider"]["arguments"] == {
        "max": 0.35,
        "arm": "experiment",
        "relative_to": "control",
    }
    (inject,) = doc["method"]
    assert inject["provider"]["arguments"]["rule"]["type"] == "abort"
    assert inject["provider"]["arguments"]["token_file"] == str(tmp_path / "token")
    assert [r["name"] for r in doc["rollbacks"]] == [
        "remove this run's faults from proxy p",
        "restart",
    ]
    for left in ("faults[1] (pause): process faults need the mlchaos agent", "check 'accuracy'"):
        assert left in said.err and left in doc["description"]


def test_nothing_to_carry_over_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    # the example's proxy is one mlchaos starts itself: Chaos Toolkit could not reach its faults
    example = ROOT / "examples" / "abort-experiment-arm.yaml"
    assert main(["export", "--format", "chaostoolkit", str(example)]) == 2
    err = capsys.readouterr().err
    assert "none of the faults carries over to Chaos Toolkit" in err
    assert "proxy 'model-proxy' is one mlchaos starts itself" in err
    assert "Traceback" not in err
