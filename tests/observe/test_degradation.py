"""Degradation and feature age: recorded per request, kept through the journal, judged by checks."""

from __future__ import annotations

import math

from mlchaos.analysis import CheckStatus, evaluate
from mlchaos.arms import Arm, ArmCode
from mlchaos.observations import Observation, ObservationStore
from mlchaos.spec import MetricCheck
from mlchaos.stats import arm_stats, degradation_mask


def store() -> ObservationStore:
    """Experiment: 60 cached, 30 cached+fallback, 10 fresh; one 502. Control: 100 fresh."""
    s = ObservationStore()
    for i in range(100):
        kind = "cached_features" if i < 60 else "cached_features,fallback_model" if i < 90 else None
        s.append(
            Observation(Arm.EXPERIMENT, float(i), 0.01, 200, degradation=kind, feature_age=8.0)
        )
        s.append(Observation(Arm.CONTROL, float(i), 0.01, 200, feature_age=0.5))
    s.append(Observation(Arm.EXPERIMENT, 100.0, 0.01, 502, degradation="default_features"))
    return s


def test_silent_degradation_is_counted_among_successful_answers_per_kind() -> None:
    s = store()
    exp = arm_stats(s, ArmCode.EXPERIMENT)
    assert exp.silent is not None and (exp.silent.count, exp.silent.n) == (90, 100)
    assert {k: e.count for k, e in exp.degraded.items()} == {
        "cached_features": 90,
        "default_features": 0,  # the only one was an error, not a silent degradation
        "fallback_model": 30,
    }
    assert exp.feature_age["p50"].value == 8.0
    ctrl = arm_stats(s, ArmCode.CONTROL)
    assert ctrl.silent is not None and ctrl.silent.count == 0
    assert ctrl.feature_age["p99"].value == 0.5
    assert int(degradation_mask(s, "fallback_model").sum()) == 30


def test_checks_bound_the_degraded_share_and_the_feature_age() -> None:
    s = store()

    def judge(**fields: object) -> CheckStatus:
        return evaluate(MetricCheck.model_validate(fields), s).status

    assert judge(metric="degraded_share", min="80%") is CheckStatus.HELD
    assert judge(metric="degraded_share", kind="fallback_model", max="10%") is CheckStatus.VIOLATED
    assert judge(metric="degraded_share", relative_to="control", min="80%") is CheckStatus.HELD
    assert judge(metric="feature_age_p50", min="5s") is CheckStatus.HELD
    assert judge(metric="feature_age_p50", arm="control", max="1s") is CheckStatus.HELD
    # a p99 of 100 answers has no finite upper bound: not enough evidence either way
    assert judge(metric="feature_age_p99", arm="control", max="1s") is CheckStatus.UNSURE


def test_batches_keep_their_degradations_and_old_journals_without_them_still_load() -> None:
    s = store()
    copy = ObservationStore()
    copy.extend_columns(s.columns(), s.models, s.degradations)

    def comparable(store: ObservationStore) -> dict[str, list[object]]:  # NaN != NaN
        return {
            k: [None if isinstance(v, float) and math.isnan(v) else v for v in vs]
            for k, vs in store.columns().items()
        }

    assert comparable(copy) == comparable(s)
    assert (copy.models, copy.degradations) == (s.models, s.degradations)
    assert int(degradation_mask(copy, "cached_features").sum()) == 90
    old = {k: v for k, v in s.columns().items() if k not in ("degradation", "feature_age")}
    legacy = ObservationStore()
    legacy.extend_columns(old, s.models)
    assert len(legacy) == len(s)
    assert not degradation_mask(legacy).any()
    assert all(math.isnan(a) for a in legacy.column("feature_age"))


def test_a_run_labelled_with_classes_other_than_0_and_1_gets_drift_but_no_auc() -> None:
    """AUC needs a binary outcome; the summary must not fail on other labels."""
    from mlchaos.report._summary import _quality

    s = ObservationStore()
    for i in range(60):
        for arm in (Arm.EXPERIMENT, Arm.CONTROL):
            s.append(Observation(arm, i, 0.01, 200, prediction=i % 3, label=i % 3))
    quality = _quality(s, None, 0.95)
    assert "auc" not in quality
    assert quality["drift"]["psi"]["drift"] is False
    binary = ObservationStore()
    for i in range(60):
        for arm in (Arm.EXPERIMENT, Arm.CONTROL):
            binary.append(Observation(arm, i, 0.01, 200, prediction=i % 2, label=i % 2))
    assert _quality(binary, None, 0.95)["auc"]["control"]["value"] == 1.0
