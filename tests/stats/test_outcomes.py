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
