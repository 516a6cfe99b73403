"""``${NAME}`` variables in experiment files, kill faults, and the settle time of a check."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlchaos.demo import EXPERIMENTS, experiment_path
from mlchaos.errors import SpecError
from mlchaos.spec import KillFault, load_experiment

TEMPLATE = """\
title: t
traffic:
  target: "${GATEWAY}"
  dataset: "${DIR}/data.csv"
  rate: 50/s
  duration: 10s
  request: {protocol: v2, model: m}
  headers: {x-literal: "$${NOT_A_VARIABLE}"}
faults:
  - {type: kill, process: {pidfile: "${DIR}/a.pid"}, start: 2s}
hypothesis:
  - {metric: model_share, model: fallback, min: 99%, settle: 500ms}
"""

VARIABLES = {"GATEWAY": "http://127.0.0.1:9000", "DIR": "/run/demo"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_variables_are_replaced_in_every_string_and_double_dollar_escapes(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, TEMPLATE), variables=VARIABLES)
    assert exp.traffic.target == "http://127.0.0.1:9000"
    assert exp.traffic.dataset == "/run/demo/data.csv"
    assert exp.traffic.headers == {"x-literal": "${NOT_A_VARIABLE}"}
    fault = exp.faults[0]
    assert isinstance(fault, KillFault)
    assert fault.process.pidfile == "/run/demo/a.pid"
    assert fault.signal == "SIGKILL"
    assert fault.end(exp.traffic.duration) == 10.0  # a crash lasts until rollback
    assert exp.hypothesis[0].settle.seconds == 0.5


def test_an_unset_variable_is_reported_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_experiment(write(tmp_path, TEMPLATE), variables={"DIR": "/x"})
    rendered = [issue.render() for issue in info.value.issues]
    assert len(rendered) == 1
    assert "traffic.target" in rendered[0]
    assert "line 3" in rendered[0]
    assert "${GATEWAY} is not set" in rendered[0]


def test_the_environment_is_the_default_source_of_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in VARIABLES.items():
        monkeypatch.setenv(key, value)
    assert load_experiment(write(tmp_path, TEMPLATE)).traffic.target == VARIABLES["GATEWAY"]


def test_a_kill_fault_must_start_while_traffic_runs_and_name_a_known_signal(
    tmp_path: Path,
) -> None:
    late = TEMPLATE.replace("start: 2s}", "start: 12s}")
    with pytest.raises(SpecError, match="starts at 12s"):
        load_experiment(write(tmp_path, late), variables=VARIABLES)
    bad_signal = TEMPLATE.replace("start: 2s}", "start: 2s, signal: SIGSTOP}")
    with pytest.raises(SpecError, match="signal"):
        load_experiment(write(tmp_path, bad_signal), variables=VARIABLES)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_the_bundled_demo_experiments_are_valid_once_their_variables_are_set(name: str) -> None:
    names = {
        "MLCHAOS_DEMO_DIR": "/d",
        "MLCHAOS_DEMO_GATEWAY": "http://127.0.0.1:1",
        "MLCHAOS_DEMO_LABELS": "http://127.0.0.1:2/labels",
        "MLCHAOS_DEMO_DATASET": "/d/requests.csv",
        "MLCHAOS_DEMO_SUPERVISOR": "http://127.0.0.1:3",
        "MLCHAOS_DEMO_REPLICA_A": "http://127.0.0.1:4",
        "MLCHAOS_DEMO_REPLICA_B": "http://127.0.0.1:5",
        "MLCHAOS_DEMO_REPLICA_A_PROXY": "http://127.0.0.1:6",
        "MLCHAOS_DEMO_REPLICA_B_PROXY": "http://127.0.0.1:7",
        "MLCHAOS_DEMO_STORE_PROXY": "http://127.0.0.1:8",
        "MLCHAOS_DEMO_STORE_PROTOCOL": "http",
        "MLCHAOS_DEMO_STORE_ARM": "experiment",
        "MLCHAOS_DEMO_AGENT": "http://127.0.0.1:9",
        "MLCHAOS_DEMO_PIPELINE": "http://127.0.0.1:10",
        "MLCHAOS_DEMO_EDGE_PROXY": "http://127.0.0.1:11",
        "MLCHAOS_DEMO_PROMETHEUS": "http://127.0.0.1:12",
        "MLCHAOS_DEMO_STORE": "http://127.0.0.1:13",
        "MLCHAOS_DEMO_ALERTMANAGER": "http://127.0.0.1:14",
        "MLCHAOS_DEMO_WEBHOOK": "127.0.0.1:15",
    }
    exp = load_experiment(experiment_path(name), variables=names)
    assert exp.hypothesis


SWEEP = """\
title: s
agents:
  - {name: a, connect: {url: "http://127.0.0.1:1", token_file: t}}
traffic:
  target: http://127.0.0.1:2
  dataset: d.csv
  rate: 50/s
  duration: 18s
  request: {protocol: v2, model: m}
faults:
  - {type: pause, target: a, process: {port: 9000}, start: 1s, duration: 16s}
sweep: {field: duration, values: [2s, 4s, 16s], require: 4s}
hypothesis:
  - {metric: error_rate, max: 1%}
"""


def test_a_sweep_gives_one_variant_per_value_each_keeping_the_traffic_after_the_fault(
    tmp_path: Path,
) -> None:
    exp = load_experiment(write(tmp_path, SWEEP), variables={})
    variants = exp.variants()
    assert [v for v, _ in variants] == ["2s", "4s", "16s"]
    for value, variant in variants:
        assert variant.sweep is None
        fault = variant.faults[0]
        assert fault.end(variant.traffic.duration) == 1 + float(value[:-1])
        assert variant.traffic.duration.seconds == 1 + float(value[:-1]) + 1  # same 1 s tail


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("fault: 0, field: duration, values: [2s, 4s]", None),
        ("fault: 3, field: duration, values: [2s, 4s]", "there is no fault 3"),
        ("field: colour, values: [1, 2]", "has no field 'colour'"),
        ("field: target, values: [a, b]", "has no field 'target'"),
        ("field: duration, values: [2s, -1s]", "does not fit 'duration'"),
        ("field: duration, values: [2s, 20s]", "ends after the traffic"),
        ("field: duration, values: [2s, 4s], require: 3s", "not one of the values"),
    ],
)
def test_a_sweep_is_checked_against_its_fault(tmp_path: Path, change: str, message: str) -> None:
    text = SWEEP.replace("field: duration, values: [2s, 4s, 16s], require: 4s", change)
    if message is None:
        assert load_experiment(write(tmp_path, text), variables={}).sweep is not None
        return
    with pytest.raises(SpecError, match=message):
        load_experiment(write(tmp_path, text), variables={})
