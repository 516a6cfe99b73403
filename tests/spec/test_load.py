"""Experiment files: valid ones load into frozen models; every problem is reported with its path."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mlchaos.errors import EXIT_INVALID, SpecError
from mlchaos.spec import AbortFault, Experiment, experiment_schema, load_experiment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

MINIMAL = """\
title: t
proxies:
  - name: p
    serve: {listen: "127.0.0.1:18001", upstream: "127.0.0.1:18000"}
traffic:
  target: http://127.0.0.1:18001
  dataset: data.csv
  rate: 50/s
  duration: 10s
  request: {protocol: v2, model: toy}
faults:
  - {type: abort, target: p, status: 503, start: 1s, duration: 5s}
hypothesis:
  - {metric: error_rate, relative_to: control, max: 5%}
"""


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_experiment(path)
    assert info.value.exit_code == EXIT_INVALID
    return [issue.render() for issue in info.value.issues]


@pytest.mark.parametrize("name", ["abort-experiment-arm.yaml", "violated-hypothesis.yaml"])
def test_bundled_examples_are_valid(name: str) -> None:
    exp = load_experiment(EXAMPLES / name)
    assert exp.faults and exp.hypothesis


def test_minimal_file_loads_into_typed_frozen_models(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, MINIMAL))
    fault = exp.faults[0]
    assert isinstance(fault, AbortFault)
    assert fault.start.seconds == 1.0
    assert exp.traffic.rate.per_second == 50.0
    with pytest.raises(ValidationError):
        exp.title = "changed"  # type: ignore[misc]


def test_fault_rule_drops_the_schedule(tmp_path: Path) -> None:
    rule = load_experiment(write(tmp_path, MINIMAL)).faults[0].rule()
    assert rule.type == "abort"
    assert "target" not in rule.model_dump()


def test_json_files_are_accepted(tmp_path: Path) -> None:
    import json

    import yaml

    data = yaml.safe_load(MINIMAL)
    exp = load_experiment(write(tmp_path, json.dumps(data), "exp.json"))
    assert exp.title == "t"


def test_every_problem_is_reported_together_with_path_and_line(tmp_path: Path) -> None:
    text = MINIMAL.replace("rate: 50/s", "rate: 50").replace("duration: 10s", "duration: -5s")
    text = text.replace("status: 503", "status: 700").replace("title: t", "title: t\ndescripton: x")
    found = problems(write(tmp_path, text))
    joined = "\n".join(found)
    assert "traffic.rate: expected a rate such as '50/s'" in joined
    assert "traffic.duration: must be positive, got -5s" in joined
    assert "faults[0].status" in joined
    assert "unknown key 'descripton' (did you mean 'description'?)" in joined
    assert len(found) == 4
    assert all(f.startswith("line ") for f in found)  # every problem carries its line


def test_unknown_fault_type_lists_the_known_ones(tmp_path: Path) -> None:
    found = problems(write(tmp_path, MINIMAL.replace("type: abort", "type: explode")))
    assert any("faults[0]: unknown type 'explode'; expected one of" in f for f in found)


def test_shares_above_100_percent_are_rejected(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "request: {protocol: v2, model: toy}",
        "request: {protocol: v2, model: toy}\n  arms: {experiment: 60%, control: 50%}",
    )
    found = problems(write(tmp_path, text))
    assert any("together exceed 100%" in f for f in found)


def test_cross_references_are_checked_after_the_model(tmp_path: Path) -> None:
    text = MINIMAL.replace("target: p,", "target: nope,").replace("duration: 5s}", "duration: 20s}")
    found = problems(write(tmp_path, text))
    assert any("faults[0].target: no proxy named 'nope' (proxies: p)" in f for f in found)


def test_fault_outliving_traffic_is_rejected(tmp_path: Path) -> None:
    found = problems(write(tmp_path, MINIMAL.replace("duration: 5s}", "duration: 20s}")))
    assert any("after the traffic" in f for f in found)


def test_fault_not_available_on_the_protocol_is_rejected(tmp_path: Path) -> None:
    text = MINIMAL.replace("{listen:", "{protocol: tcp, listen:")
    found = problems(write(tmp_path, text))
    assert any("fault 'abort' is not available on tcp proxy 'p'" in f for f in found)


@pytest.mark.parametrize(
    ("arm", "shares", "refused"),
    [
        ("experiment", "", True),  # no arm header on a connection, no shares: never fires
        ("control", "", True),
        ("all", "", False),
        ("experiment", ", arms: {experiment: 50%, control: 50%}", False),  # random by shares
    ],
)
def test_an_arm_targeted_fault_on_a_tcp_proxy_needs_a_way_to_find_its_arm(
    tmp_path: Path, arm: str, shares: str, refused: bool
) -> None:
    text = MINIMAL.replace("{listen:", "{protocol: tcp, listen:").replace(
        'upstream: "127.0.0.1:18000"}', f'upstream: "127.0.0.1:18000"{shares}}}'
    )
    text = text.replace(
        "{type: abort, target: p, status: 503,", f"{{type: reset, target: p, arm: {arm},"
    )
    path = write(tmp_path, text)
    if not refused:
        load_experiment(path)
        return
    # (the hypothesis compares with control, which a tcp proxy without shares cannot feed
    # either; only the arm problem matters here)
    never = [f for f in problems(path) if "would never fire" in f]
    assert len(never) == 1
    assert "faults[0].arm: fault 'reset' aims at the" in never[0]
    assert "'arm: all'" in never[0]


def test_bound_kind_must_match_the_metric(tmp_path: Path) -> None:
    found = problems(write(tmp_path, MINIMAL.replace("max: 5%}", "max: 250ms}")))
    assert any("must be written like '5%'" in f for f in found)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("title: [unclosed", "invalid YAML"),
        ("", "the file is empty"),
        ("- a\n- b\n", "expected a mapping"),
        ("title: a\ntitle: b\n", "duplicate key"),
    ],
)
def test_malformed_files_get_one_clear_message(tmp_path: Path, text: str, message: str) -> None:
    assert any(message in f for f in problems(write(tmp_path, text)))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    from mlchaos.errors import ConfigError

    with pytest.raises(ConfigError, match="no such file"):
        load_experiment(tmp_path / "absent.yaml")


def test_schema_describes_every_section() -> None:
    schema = experiment_schema()
    assert set(Experiment.model_fields) == set(schema["properties"])
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("duration: 5s}", "duration: 0s}", "faults[0].duration", "must be positive, got 0s"),
        ("start: 1s", "start: -1s", "faults[0].start", "must not be negative, got -1s"),
        ("duration: 10s", "duration: 0s", "traffic.duration", "must be positive, got 0s"),
        ("title: t", "title: t\nlease: 0s", "lease", "must be positive, got 0s"),
        (
            "title: t",
            "title: t\nrecovery: {deadline: 0ms}",
            "recovery.deadline",
            "must be positive",
        ),
    ],
)
def test_zero_and_negative_durations_are_rejected_where_they_make_no_sense(
    tmp_path: Path, old: str, new: str, path: str, message: str
) -> None:
    found = problems(write(tmp_path, MINIMAL.replace(old, new, 1)))
    assert any(f"{path}: {message}" in f for f in found), found


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.yaml", "a: " + "[" * 5000 + "]" * 5000),
        ("deep.json", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    ],
)
def test_absurdly_nested_files_are_refused_not_crashed_on(
    tmp_path: Path, name: str, text: str
) -> None:
    assert any("nested too deeply" in f for f in problems(write(tmp_path, text, name)))


def test_python_tags_are_not_constructed(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "title: !!python/object/apply:os.system [echo hi]\n"))
    assert any("title: unsupported YAML tag" in f for f in found), found


def test_importing_the_spec_loads_no_traffic_data_plane_or_numpy() -> None:
    """Reading an experiment file is light: the CLI's validate and schema stay fast."""
    import subprocess
    import sys

    heavy = (
        "mlchaos.traffic",
        "mlchaos.proxy._http",
        "mlchaos.proxy._tcp",
        "mlchaos.proxy._server",
        "mlchaos.proxy._faults",
        "numpy",
        "aiohttp",
        "httptools",
    )
    code = f"import sys, mlchaos.spec; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_baseline_comparison_needs_a_baseline_and_is_for_the_hypothesis_only(
    tmp_path: Path,
) -> None:
    baseline = "  - {metric: latency_p95, relative_to: baseline, max: 1.5x}\n"
    ok = MINIMAL + baseline
    assert load_experiment(write(tmp_path, ok)).hypothesis[1].relative_to == "baseline"
    at_zero = ok.replace("start: 1s, duration: 5s", "start: 0s, duration: 5s")
    (issue,) = problems(write(tmp_path, at_zero, "zero.yaml"))
    assert "a fault starts at 0s: start it later so there is a baseline" in issue
    guard = MINIMAL + "guardrails:\n" + baseline
    (issue,) = problems(write(tmp_path, guard, "guard.yaml"))
    assert "guardrails[0].relative_to" in issue and "is for the hypothesis" in issue


def test_a_bad_bound_is_reported_at_its_own_line(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "  - {metric: error_rate, relative_to: control, max: 5%}\n",
        "  - metric: error_rate\n    arm: experiment\n    max: 2\n"
        "  - metric: error_rate\n    relative_to: control\n    min: 5ms\n",
    )
    found = problems(write(tmp_path, text))
    assert any(p.startswith("line 16: hypothesis[0].max") for p in found), found
    assert any(p.startswith("line 19: hypothesis[1].min: error_rate must be") for p in found)


def test_notify_checks_need_alertmanager_and_a_webhook_and_a_firing_alert(
    tmp_path: Path,
) -> None:
    alerts = """\
alerts:
  prometheus: http://127.0.0.1:9090
  expect:
    - {name: A, notify: {receiver: pager}}
"""
    [issue] = problems(write(tmp_path, MINIMAL + alerts))
    assert "'notify' checks need alertmanager and webhook" in issue
    alerts = """\
alerts:
  prometheus: http://127.0.0.1:9090
  alertmanager: http://127.0.0.1:9093
  webhook: 127.0.0.1:9095
  expect:
    - {name: A, must_not_fire: true, notify: {receiver: pager}}
"""
    [issue] = problems(write(tmp_path, MINIMAL + alerts))
    assert "an alert that must not fire has no notification" in issue
    exp = load_experiment(write(tmp_path, MINIMAL + alerts.replace("must_not_fire: true, ", "")))
    assert exp.alerts is not None and exp.alerts.webhook is not None
    [expected] = exp.alerts.expect
    assert expected.notify is not None and expected.notify.within.seconds == 60.0
