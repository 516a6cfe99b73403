"""Sample size is planned, not discovered: what a check needs, and what the run will judge."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlchaos.analysis import CheckStatus, evaluate, plan, requests_needed
from mlchaos.arms import ArmCode
from mlchaos.observations import ObservationStore
from mlchaos.spec import MetricCheck, load_experiment
from mlchaos.stats import proportion, quantile
from tests.conftest import MLCHAOS, ROOT


def check(**fields: object) -> MetricCheck:
    return MetricCheck.model_validate({"metric": "error_rate", **fields})


def test_the_fewest_requests_with_which_the_best_outcome_holds() -> None:
    fallback = check(metric="model_share", model="fallback", min="99%")
    assert requests_needed(fallback, 0.95) == 381  # "≈ 380", the issue's own example
    assert proportion(381, 381).low >= 0.99 > proportion(380, 380).low
    assert requests_needed(check(max="2%"), 0.95) == 189
    assert proportion(0, 189).high <= 0.02 < proportion(0, 188).high
    p99 = check(metric="latency_p99", max="250ms")
    assert requests_needed(p99, 0.95) == 368
    assert quantile(list(range(368)), 0.99).high < float("inf")
    assert quantile(list(range(367)), 0.99).high == float("inf")
    assert requests_needed(check(relative_to="control", max="35%"), 0.95) == 8
    assert requests_needed(check(max="0%"), 0.95) is None  # never provably 0
    assert requests_needed(check(max="2%", min_samples=500), 0.95) == 500
    assert requests_needed(check(max="2%", judge="point"), 0.95) == 1


def test_the_plan_of_an_example_counts_the_judged_part_of_its_fault_window() -> None:
    exp = load_experiment(ROOT / "examples" / "abort-experiment-arm.yaml")
    lines = plan(exp)
    # 150/s, half to each arm, over the window 1 s .. 9 s less the 1 s request life.
    assert [(p.needed, p.expected) for p in lines] == [(189, 525), (8, 525), (368, 525)]
    assert not any(p.short for p in lines)


def test_an_unsure_check_says_how_much_more_traffic_would_likely_decide_it() -> None:
    s = ObservationStore()
    for i in range(100):
        s.add(arm=ArmCode.EXPERIMENT, start=float(i), latency=0.01, status=200)
    result = evaluate(check(arm="experiment", max="2%"), s)
    assert result.status is CheckStatus.UNSURE
    assert result.detail.endswith("≈ 243 more requests would likely decide it")


def test_validate_reads_the_dataset_and_warns_of_checks_the_run_will_leave_unsure(
    tmp_path: Path,
) -> None:
    text = (ROOT / "examples" / "abort-experiment-arm.yaml").read_text()
    text = text.replace("dataset: data/", f"dataset: {ROOT / 'examples' / 'data'}/")
    short = tmp_path / "short.yaml"
    short.write_text(text.replace("    max: 2%", "    max: 0.5%"))
    done = subprocess.run(
        [*MLCHAOS, "validate", str(short)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (
        "warning: 'control arm untouched' needs ≈ 765 control requests; this run judges ≈ 525: "
        "it will likely end unsure" in done.stdout
    )
    missing = tmp_path / "missing.yaml"
    missing.write_text(text.replace("label: label", "label: outcome"))
    done = subprocess.run(
        [*MLCHAOS, "validate", str(missing)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "traffic.label: no column 'outcome'" in done.stderr
    assert "Traceback" not in done.stderr
