"""Per-arm statistics over an ObservationStore, and experiment-versus-control comparison."""

import json
import math

import numpy as np
import pytest

from mlchaos.arms import ArmCode
from mlchaos.observations import ErrorKind, ObservationStore
from mlchaos.stats import (
    ArmStats,
    arm_stats,
    compare,
    proportion,
    proportion_difference,
    quantile,
)

nan = math.nan
EXP, CTRL = ArmCode.EXPERIMENT, ArmCode.CONTROL


@pytest.fixture
def store() -> ObservationStore:
    """Ten experiment requests of every kind, five plain control ones, three outside any arm."""
    s = ObservationStore()
    a, b = s.model_code("a"), s.model_code("b")
    ok = [  # latency, model, prediction, label
        (0.1, a, 1.0, 1.0),  # right
        (0.2, a, 0.0, 1.0),  # wrong
        (0.3, a, 1.0, 1.0),  # right
        (0.4, a, nan, 1.0),  # no prediction: not scored
        (0.5, b, 1.0, nan),  # no label: not scored
        (0.6, -1, 0.0, 0.0),  # right, unknown model
    ]
    for t, (lat, model, pred, label) in enumerate(ok):
        s.add(arm=EXP, start=t, latency=lat, status=200, model=model, prediction=pred, label=label)
    for t, lat in ((6, 2.0), (7, 3.0)):  # answered with an error status: failed, but has latency
        s.add(arm=EXP, start=t, latency=lat, status=503, model=a, prediction=1.0, label=1.0)
    for t in (8, 9):  # no response at all
        s.add(arm=EXP, start=t, latency=5.0, error=ErrorKind.TIMEOUT, prediction=nan, label=1.0)
    for t in range(5):
        s.add(arm=CTRL, start=t, latency=0.1, status=200, model=a)
    for t in range(3):
        s.add(arm=ArmCode.NONE, start=t, latency=9.0, status=500, model=b)
    return s


def test_requests_and_error_rate_count_every_row_of_the_arm(store: ObservationStore) -> None:
    e = arm_stats(store, EXP)
    assert e.arm is EXP
    assert e.requests == 10
    assert e.errors == proportion(4, 10)


def test_latency_covers_every_answered_request_including_error_statuses(
    store: ObservationStore,
) -> None:
    e = arm_stats(store, EXP)
    answered = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 2.0, 3.0]
    assert list(e.latency) == ["p50", "p95", "p99"]
    for key, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert e.latency[key] == quantile(answered, q)
    assert e.latency["p99"].n == 8


def test_accuracy_scores_successful_responses_with_prediction_and_label(
    store: ObservationStore,
) -> None:
    acc = arm_stats(store, EXP).accuracy
    assert acc is not None
    assert (acc.count, acc.n) == (3, 4)


def test_accuracy_is_none_for_an_arm_without_labels(store: ObservationStore) -> None:
    assert arm_stats(store, CTRL).accuracy is None


def test_accuracy_is_unknown_not_none_when_labelled_requests_all_failed() -> None:
    s = ObservationStore()
    s.add(arm=EXP, start=0, latency=1.0, error=ErrorKind.RESET, label=1.0)
    acc = arm_stats(s, EXP).accuracy
    assert acc is not None
    assert math.isnan(acc.value)
    assert acc.n == 0


def test_threshold_turns_scores_into_classes() -> None:
    s = ObservationStore()
    for pred, label in ((0.9, 1.0), (0.2, 0.0), (0.6, 0.0), (0.4, 1.0)):
        s.add(arm=EXP, start=0, latency=0.1, status=200, prediction=pred, label=label)
    acc = arm_stats(s, EXP, threshold=0.5).accuracy
    assert acc is not None
    assert (acc.count, acc.n) == (2, 4)
    exact = arm_stats(s, EXP).accuracy
    assert exact is not None
    assert exact.count == 0


def test_model_share_is_over_successful_responses_for_every_known_model(
    store: ObservationStore,
) -> None:
    e, c = arm_stats(store, EXP), arm_stats(store, CTRL)
    assert e.model_share == {"a": proportion(4, 6), "b": proportion(1, 6)}
    assert c.model_share == {"a": proportion(5, 5), "b": proportion(0, 5)}


def test_mask_selects_the_rows_that_count(store: ObservationStore) -> None:
    mask = store.column("start") >= 6
    e = arm_stats(store, EXP, mask=mask)
    assert e.requests == 4
    assert e.errors.count == 4
    assert e.latency["p50"].n == 2
    assert e.model_share["a"].n == 0


def test_mask_of_the_wrong_length_is_rejected(store: ObservationStore) -> None:
    with pytest.raises(ValueError, match="mask"):
        arm_stats(store, EXP, mask=np.ones(3, dtype=bool))


def test_confidence_is_passed_to_every_estimate(store: ObservationStore) -> None:
    e = arm_stats(store, EXP, confidence=0.9)
    estimates = [e.errors, *e.latency.values(), *e.model_share.values()]
    assert e.accuracy is not None
    assert {x.confidence for x in [*estimates, e.accuracy]} == {0.9}


def test_an_empty_store_gives_unknown_estimates() -> None:
    e = arm_stats(ObservationStore(), CTRL)
    assert e.requests == 0
    assert math.isnan(e.errors.value)
    assert all(math.isnan(x.value) for x in e.latency.values())
    assert e.accuracy is None
    assert e.model_share == {}
    json.dumps(e.to_dict(), allow_nan=False)


def test_arm_stats_to_dict_is_strict_json(store: ObservationStore) -> None:
    d = arm_stats(store, EXP).to_dict()
    assert d["arm"] == "experiment"
    assert d["requests"] == 10
    assert d["errors"]["count"] == 4
    assert set(d["latency"]) == {"p50", "p95", "p99"}
    assert d["accuracy"]["n"] == 4
    assert set(d["model_share"]) == {"a", "b"}
    json.dumps(d, allow_nan=False)


def test_arm_stats_agree_with_a_row_by_row_count() -> None:
    """The vectorised statistics equal a plain loop over records on random data."""
    rng = np.random.default_rng(3)
    s = ObservationStore()
    models = [s.model_code(m) for m in ("m1", "m2", "m3")]
    rows = []
    for _ in range(3000):
        row = {
            "arm": int(rng.integers(0, 3)),
            "start": 0.0,
            "latency": float(rng.exponential(0.05)),
            "status": int(rng.choice([0, 200, 201, 302, 404, 500, 503])),
            "error": int(rng.choice([0, 0, 0, 1, 2])),
            "model": int(rng.choice([-1, *models])),
            "prediction": float(rng.choice([0.0, 1.0, nan])),
            "label": float(rng.choice([0.0, 1.0, nan])),
        }
        s.add(**row)
        rows.append(row)
    stats = arm_stats(s, EXP)
    mine = [r for r in rows if r["arm"] == EXP]
    bad = [r["error"] != 0 or not 200 <= r["status"] < 400 for r in mine]
    good = [r for r, b in zip(mine, bad, strict=True) if not b]
    scored = [r for r in good if not (math.isnan(r["prediction"]) or math.isnan(r["label"]))]
    assert stats.requests == len(mine)
    assert stats.errors.count == sum(bad)
    assert stats.latency["p95"] == quantile([r["latency"] for r in mine if r["error"] == 0], 0.95)
    assert stats.accuracy is not None
    assert (stats.accuracy.count, stats.accuracy.n) == (
        sum(r["prediction"] == r["label"] for r in scored),
        len(scored),
    )
    for code, name in enumerate(s.models):
        assert stats.model_share[name].count == sum(r["model"] == code for r in good)


def test_compare_gives_experiment_minus_control_and_each_arms_p99(
    store: ObservationStore,
) -> None:
    e, c = arm_stats(store, EXP), arm_stats(store, CTRL)
    cmp = compare(e, c)
    assert cmp.error_rate_diff == proportion_difference(4, 10, 0, 5)
    assert cmp.accuracy_diff is None  # control is not labelled
    assert cmp.p99 == {"experiment": e.latency["p99"], "control": c.latency["p99"]}
    assert cmp.p99_ratio.value == pytest.approx(e.latency["p99"].value / 0.1)
    assert cmp.p99_ratio.confidence == pytest.approx(0.95**2)
    json.dumps(cmp.to_dict(), allow_nan=False)


def test_compare_gives_accuracy_difference_when_both_arms_are_labelled(
    store: ObservationStore,
) -> None:
    e = arm_stats(store, EXP)
    assert compare(e, e).accuracy_diff == proportion_difference(3, 4, 3, 4)


def test_compare_refuses_arms_at_different_confidences(store: ObservationStore) -> None:
    with pytest.raises(ValueError, match="confidence"):
        compare(arm_stats(store, EXP), arm_stats(store, CTRL, confidence=0.9))


def test_arm_stats_is_frozen(store: ObservationStore) -> None:
    e: ArmStats = arm_stats(store, EXP)
    with pytest.raises(AttributeError):
        e.requests = 0  # type: ignore[misc]
