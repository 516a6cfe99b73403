"""Judging checks: status from the interval, and the error rates of the decision rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlchaos.analysis import (
    CheckResult,
    CheckStatus,
    evaluate,
    fault_window_mask,
    guardrail_confidence,
    judge_hypothesis,
)
from mlchaos.arms import ArmCode
from mlchaos.observations import ObservationStore
from mlchaos.spec import Analysis, MetricCheck


def store_with(
    exp_errors: int, exp_n: int, ctrl_errors: int = 0, ctrl_n: int = 0, latency: float = 0.01
) -> ObservationStore:
    s = ObservationStore()
    for arm, errors, n in (
        (ArmCode.EXPERIMENT, exp_errors, exp_n),
        (ArmCode.CONTROL, ctrl_errors, ctrl_n),
    ):
        for i in range(n):
            s.add(arm=arm, start=float(i), latency=latency, status=503 if i < errors else 200)
    return s


def check(**fields: object) -> MetricCheck:
    return MetricCheck.model_validate({"metric": "error_rate", **fields})


def test_no_observations_gives_no_data_not_a_pass() -> None:
    result = evaluate(check(max="5%"), ObservationStore())
    assert result.status is CheckStatus.NO_DATA
    assert not result.held


def test_too_few_samples_gives_no_data() -> None:
    result = evaluate(check(max="5%", min_samples=100), store_with(0, 50))
    assert result.status is CheckStatus.NO_DATA


def test_interval_inside_the_bound_holds() -> None:
    result = evaluate(check(max="5%"), store_with(0, 400))
    assert result.status is CheckStatus.HELD
    assert result.estimate is not None
    assert result.estimate.high <= 0.05


def test_interval_straddling_the_bound_is_unsure_and_fails_the_hypothesis() -> None:
    result = evaluate(check(max="5%"), store_with(5, 100))  # 5% [2.2%, 11.2%]
    assert result.status is CheckStatus.UNSURE
    assert not result.held


def test_interval_wholly_outside_the_bound_is_violated() -> None:
    assert evaluate(check(max="5%"), store_with(50, 100)).status is CheckStatus.VIOLATED


@pytest.mark.parametrize(
    ("errors", "n", "status"),
    [
        (95, 100, CheckStatus.HELD),  # 95% [88.8%, 97.8%]: wholly at or above 80%
        (80, 100, CheckStatus.UNSURE),  # 80% [71.1%, 86.7%]: straddles 80%
        (50, 100, CheckStatus.VIOLATED),  # 50% [40.4%, 59.6%]: wholly below 80%
    ],
)
def test_a_minimum_bound_is_judged_on_the_interval_like_a_maximum(
    errors: int, n: int, status: CheckStatus
) -> None:
    """The min side of the decision rule: held only when the whole interval is at or above the
    bound; a straddling interval is unsure, not held."""
    result = evaluate(check(min="80%"), store_with(errors, n))
    assert result.status is status
    assert result.held is (status is CheckStatus.HELD)


def test_a_check_with_both_bounds_holds_only_inside_both() -> None:
    both = check(min="40%", max="60%")
    assert evaluate(both, store_with(500, 1000)).status is CheckStatus.HELD
    assert evaluate(both, store_with(45, 100)).status is CheckStatus.UNSURE  # low end below 40%
    assert evaluate(both, store_with(900, 1000)).status is CheckStatus.VIOLATED


def test_point_judge_uses_the_estimate() -> None:
    assert evaluate(check(max="6%", judge="point"), store_with(5, 100)).status is CheckStatus.HELD


def test_relative_check_compares_with_control() -> None:
    result = evaluate(check(relative_to="control", max="5%"), store_with(30, 300, 0, 300))
    assert result.estimate is not None
    assert result.estimate.value == pytest.approx(0.1)
    assert result.status is CheckStatus.VIOLATED


def test_latency_bound_in_time() -> None:
    s = store_with(0, 500, latency=0.2)
    assert evaluate(check(metric="latency_p99", max="250ms"), s).status is CheckStatus.HELD
    assert evaluate(check(metric="latency_p99", max="100ms"), s).status is CheckStatus.VIOLATED


def test_fault_window_mask_selects_rows_by_send_time_whatever_their_outcome() -> None:
    """Rows sent at 0..9 s: the window [2, 6] with a 1 s client timeout judges those sent at 2..5,
    whose whole life lies inside it, however long they took (a 4 s timeout sent at 5 included)."""
    s = ObservationStore()
    for i in range(10):
        slow = i == 5
        s.add(arm=ArmCode.EXPERIMENT, start=float(i), latency=4.0 if slow else 0.01, error=slow)
    assert fault_window_mask(s, [(2.0, 6.0)], horizon=1.0).tolist() == (
        [False, False, True, True, True, True, False, False, False, False]
    )
    assert fault_window_mask(s, [(2.0, 4.5), (8.0, 9.5)]).tolist() == (
        [False, False, True, True, True, False, False, False, True, True]
    )


def test_judging_by_send_time_keeps_slow_failures_an_answered_window_would_drop() -> None:
    """A fault that makes half the requests time out (1 s) and half fail at once: chosen by send
    time the judged error rate is the true 100%, whatever the order within the window."""
    s = ObservationStore()
    for i in range(200):
        timeout = i % 2 == 0
        s.add(
            arm=ArmCode.EXPERIMENT,
            start=10.0 + i * 0.05,
            latency=1.0 if timeout else 0.001,
            status=0 if timeout else 503,
            error=1 if timeout else 0,
        )
    (result,) = judge_hypothesis(
        [check(arm="experiment", min="99%")], s, [(10.0, 20.0)], Analysis(), horizon=1.0
    )
    assert result.estimate is not None and result.estimate.value == 1.0
    assert result.estimate.n == 181  # sent in [10, 19]


def test_holding_at_the_bound_is_rare_and_holding_well_inside_is_likely() -> None:
    """The rule 'held iff the 95% upper bound <= max' declares a check held when the true
    difference sits exactly on the bound at most ~2.5% of the time (one-sided), and almost
    always when the truth is well inside."""
    rng = np.random.default_rng(20261128)
    n, runs, bound = 400, 400, 0.05

    def held_rate(true_diff: float) -> float:
        held = 0
        for _ in range(runs):
            s = store_with(int(rng.binomial(n, 0.02 + true_diff)), n, int(rng.binomial(n, 0.02)), n)
            result = evaluate(check(relative_to="control", max=f"{bound:.0%}"), s)
            held += result.status is CheckStatus.HELD
        return held / runs

    at_bound = held_rate(bound)
    assert at_bound <= 0.025 + 3 * math.sqrt(0.025 * 0.975 / runs)
    assert held_rate(0.0) >= 0.9


def test_the_hypothesis_sees_the_fault_window_less_each_checks_settle_time() -> None:
    """Errors in the first 2 s after injection (t=10) count unless the check settles past them."""
    s = ObservationStore()
    for i in range(100):
        t = 10.0 + i * 0.1  # 10 s of traffic inside the fault window [10, 20]
        s.add(arm=ArmCode.EXPERIMENT, start=t, latency=0.01, status=503 if t < 12 else 200)
    s.add(arm=ArmCode.EXPERIMENT, start=5.0, latency=0.01, status=503)  # before the fault
    strict = check(max="5%")
    settled = check(max="5%", settle="2s")
    analysis = Analysis()
    results = judge_hypothesis([strict, settled], s, [(10.0, 20.0)], analysis)
    assert [r.status for r in results] == [CheckStatus.VIOLATED, CheckStatus.HELD]
    assert results[0].estimate is not None and results[0].estimate.n == 100
    assert results[1].estimate is not None and results[1].estimate.n == 80
    everything = judge_hypothesis([settled], s, [(10.0, 20.0)], Analysis(window="all"))
    assert everything[0].estimate is not None and everything[0].estimate.n == 101


def test_guardrails_split_alpha_across_their_bounds() -> None:
    """Bonferroni: each bound of each guardrail gets alpha / (number of bounds)."""
    one = check(relative_to="control", max="0%")
    both = check(metric="accuracy", relative_to="control", min="-10%", max="10%")
    assert guardrail_confidence([one], 0.95) == pytest.approx(0.95)
    assert guardrail_confidence([one, both], 0.95) == pytest.approx(1 - 0.05 / 3)
    assert guardrail_confidence([], 0.95) == pytest.approx(0.95)


def test_a_second_guardrail_raises_the_evidence_each_needs_to_trip() -> None:
    """Errors 21 of 400 against 4 of 400: the mSPRT's evidence is about 30, past 1/alpha = 20
    for a lone guardrail, short of 40 when two share alpha."""
    store = store_with(21, 400, 4, 400)
    guard = check(relative_to="control", max="0%")
    alone = evaluate(guard, store, confidence=guardrail_confidence([guard], 0.95), sequential=True)
    shared = evaluate(
        guard, store, confidence=guardrail_confidence([guard, guard], 0.95), sequential=True
    )
    assert alone.status is CheckStatus.VIOLATED
    assert shared.status is not CheckStatus.VIOLATED


def test_latency_against_the_baseline_before_injection_ignores_a_machine_that_is_slower() -> None:
    """The same arm before the fault (0-10 s) and during it (10-20 s): 'p95 at most 1.5x the
    baseline' holds on a fast machine and on one twice as slow throughout, and is violated when
    the fault itself triples latency."""

    def store(before: float, during: float) -> ObservationStore:
        s = ObservationStore()
        rng = np.random.default_rng(4)
        for i in range(2000):
            t = i * 0.01
            base = before if t < 10 else during
            s.add(arm=ArmCode.EXPERIMENT, start=t, latency=base * (1 + rng.random()), status=200)
        return s

    check = MetricCheck.model_validate(
        {"metric": "latency_p95", "arm": "experiment", "relative_to": "baseline", "max": "1.5x"}
    )
    windows = [(10.0, 20.0)]
    for before, during, status in (
        (0.01, 0.01, CheckStatus.HELD),
        (0.02, 0.02, CheckStatus.HELD),  # a slower machine: an absolute 25 ms bound would fail
        (0.01, 0.03, CheckStatus.VIOLATED),
    ):
        (result,) = judge_hypothesis(
            [check], store(before, during), windows, Analysis(), horizon=0.1
        )
        assert result.status is status, (before, during, result.detail)
    assert check.describe() == "latency_p95 experiment / baseline"


def test_auc_precision_and_recall_are_assertable_with_their_intervals() -> None:
    """Scores that rank positives above negatives 92% of the time (AUC = Φ(√2)), threshold 0.5
    (precision = recall = Φ(1) = 84%): AUC, precision and recall are checks like any other, and
    each compares with control (scores that know nothing: AUC 50%) too."""
    rng = np.random.default_rng(8)
    s = ObservationStore()
    for arm, shift in ((ArmCode.EXPERIMENT, 1.0), (ArmCode.CONTROL, 0.0)):
        for i in range(2000):
            label = float(i % 2)
            score = 1 / (1 + math.exp(-(rng.normal() + (shift if label else -shift))))
            s.add(arm=arm, start=float(i), latency=0.01, status=200, prediction=score, label=label)
    analysis = Analysis(threshold=0.5)

    def judge(**fields: object) -> CheckResult:
        (result,) = judge_hypothesis([check(**fields)], s, [], analysis)
        return result

    auc = judge(metric="auc", arm="experiment", min="85%")
    assert auc.status is CheckStatus.HELD and auc.estimate is not None
    assert 0.90 < auc.estimate.value < 0.94
    assert judge(metric="auc", arm="control", min="60%").status is CheckStatus.VIOLATED  # chance
    better = judge(metric="auc", relative_to="control", min="30%")
    assert better.status is CheckStatus.HELD
    precision = judge(metric="precision", arm="experiment", min="80%")
    recall = judge(metric="recall", arm="experiment", min="80%")
    assert precision.status is recall.status is CheckStatus.HELD
    assert precision.estimate is not None and 0.82 < precision.estimate.value < 0.87


def test_prediction_drift_from_control_is_an_assertable_distance_with_its_interval() -> None:
    rng = np.random.default_rng(9)

    def store(shift: float) -> ObservationStore:
        s = ObservationStore()
        for arm, mean in ((ArmCode.EXPERIMENT, shift), (ArmCode.CONTROL, 0.0)):
            for value in rng.normal(mean, 1.0, 3000):
                s.add(arm=arm, start=0.0, latency=0.01, status=200, prediction=float(value))
        return s

    drift = check(metric="prediction_drift", relative_to="control", max="10%")
    (same,) = judge_hypothesis([drift], store(0.0), [], Analysis())
    assert same.status is CheckStatus.HELD, same.detail
    (moved,) = judge_hypothesis([drift], store(1.0), [], Analysis())
    assert moved.status is CheckStatus.VIOLATED, moved.detail
    with pytest.raises(ValueError, match="set relative_to: control"):
        check(metric="prediction_drift", max="10%")


def test_no_data_says_which_sample_had_none() -> None:
    s = store_with(0, 50)  # experiment only: control sent nothing
    relative = evaluate(check(relative_to="control", max="5%"), s)
    assert relative.status is CheckStatus.NO_DATA
    assert relative.detail == "control: no observations to compare with"
    lonely = evaluate(check(arm="control", max="5%"), s)
    assert lonely.detail == "the control arm: 0 observations (need 1)"
