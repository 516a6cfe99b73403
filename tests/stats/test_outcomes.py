"""Which requests failed, and which predictions were right."""

import math

import numpy as np
import pytest

from mlchaos.stats import accuracy, correct, failed

nan = math.nan


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (200, 0, False),
        (204, 0, False),
        (302, 0, False),
        (399, 0, False),
        (199, 0, True),
        (400, 0, True),
        (429, 0, True),
        (503, 0, True),
        (0, 1, True),  # timeout, no response
        (0, 0, True),  # no status recorded is not a success
        (200, 3, True),  # the connection broke after the status line
    ],
)
def test_a_request_fails_without_a_response_or_outside_200_to_399(
    status: int, error: int, expected: bool
) -> None:
    got = failed(np.array([status], dtype=np.int16), np.array([error], dtype=np.int8))
    assert got.dtype == np.bool_
    assert got.tolist() == [expected]


def test_without_threshold_prediction_must_equal_label() -> None:
    got = correct([1.0, 2.0, 0.0, nan, 1.0, nan], [1.0, 3.0, 0.0, 1.0, nan, nan])
    assert got.tolist() == [True, False, True, False, False, False]


def test_with_threshold_the_class_is_prediction_at_or_above_it() -> None:
    pred = [0.9, 0.1, 0.5, 0.49, 0.7, 0.2, nan, 0.9]
    label = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, nan]
    got = correct(pred, label, threshold=0.5)
    assert got.tolist() == [True, True, True, False, False, False, False, False]


def test_with_threshold_a_label_that_is_not_a_class_never_matches() -> None:
    assert correct([0.9, 0.1], [2.0, 0.5], threshold=0.5).tolist() == [False, False]


def test_accuracy_counts_only_rows_with_both_prediction_and_label() -> None:
    e = accuracy([1.0, 0.0, 1.0, nan, 1.0], [1.0, 1.0, 1.0, 0.0, nan])
    assert (e.count, e.n) == (2, 3)
    assert e.value == pytest.approx(2 / 3)


def test_accuracy_with_threshold_and_confidence() -> None:
    e = accuracy([0.8, 0.3, 0.6, 0.1], [1.0, 0.0, 0.0, 0.0], threshold=0.5, confidence=0.9)
    assert (e.count, e.n, e.confidence) == (3, 4, 0.9)


def test_accuracy_without_scorable_rows_is_unknown() -> None:
    e = accuracy([nan, 1.0], [1.0, nan])
    assert math.isnan(e.value)
    assert (e.n, e.low, e.high) == (0, 0.0, 1.0)


def test_accuracy_falls_with_the_age_of_the_features_and_the_largest_holding_age_is_found() -> None:
    """Simulated: the answer is right with probability 0.95 - 0.02 * age (seconds)."""
    import numpy as np

    from mlchaos.stats import accuracy_by, largest_holding

    rng = np.random.default_rng(5)
    age = rng.uniform(0, 20, 20_000)
    label = rng.integers(0, 2, age.size).astype(float)
    right = rng.random(age.size) < 0.95 - 0.02 * age
    prediction = np.where(right, label, 1 - label)
    age[:10] = np.nan  # no age reported: counted nowhere
    points = accuracy_by(age, prediction, label)
    assert [(p.low, p.high) for p in points] == [
        (0, 1),
        (1, 2),
        (2, 4),
        (4, 8),
        (8, 16),
        (16, 32),
    ]  # fmt: skip - bins without a row (32 s and more) are left out
    values = [p.estimate.value for p in points]
    assert values == sorted(values, reverse=True)
    assert sum(p.estimate.n for p in points) == age.size - 10
    # a bin's accuracy is that of its mean age: 4-8 s → 83% holds 80%, 8-16 s → 71% does not
    assert largest_holding(points, 0.80) == 8.0
    assert largest_holding(points, 0.99) is None
