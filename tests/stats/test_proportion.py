"""Wilson and Newcombe intervals: published values, statsmodels agreement, edges, invariants."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from mlchaos.stats import proportion, proportion_difference

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, Wilson.
WILSON_PUBLISHED = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (29, 29, 0.8830, 1.0),
]

# Newcombe (1998), "Interval estimation for the difference between independent proportions",
# Table II, method 10 (hybrid score).
NEWCOMBE_PUBLISHED = [
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (6, 7, 2, 7, 0.0582, 0.8062),
    (5, 56, 0, 29, -0.0381, 0.1926),
    (0, 10, 0, 20, -0.1611, 0.2775),
    (0, 10, 0, 10, -0.2775, 0.2775),
    (10, 10, 0, 20, 0.6791, 1.0),
    (10, 10, 0, 10, 0.6075, 1.0),
]

confidences = st.floats(min_value=0.5, max_value=0.999)


@st.composite
def counts(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(min_value=0, max_value=10_000))
    return draw(st.integers(min_value=0, max_value=n)), n


@pytest.mark.parametrize(("k", "n", "low", "high"), WILSON_PUBLISHED)
def test_wilson_matches_newcombes_published_intervals(
    k: int, n: int, low: float, high: float
) -> None:
    e = proportion(k, n)
    assert e.value == k / n
    assert (e.low, e.high) == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))
    assert (e.n, e.count, e.confidence) == (n, k, 0.95)


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
@pytest.mark.parametrize(
    ("k", "n"), [(0, 1), (1, 1), (0, 7), (3, 7), (7, 7), (12, 1000), (500, 999)]
)
def test_wilson_agrees_with_statsmodels(k: int, n: int, confidence: float) -> None:
    low, high = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
    e = proportion(k, n, confidence)
    assert (e.low, e.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))


def test_proportion_of_nothing_is_unknown_with_the_whole_unit_interval() -> None:
    e = proportion(0, 0)
    assert math.isnan(e.value)
    assert (e.low, e.high, e.n, e.count) == (0.0, 1.0, 0, 0)


def test_all_failures_have_a_lower_bound_of_exactly_zero() -> None:
    e = proportion(0, 50)
    assert (e.value, e.low) == (0.0, 0.0)
    assert 0.0 < e.high < 0.1


def test_all_successes_have_an_upper_bound_of_exactly_one() -> None:
    e = proportion(50, 50)
    assert (e.value, e.high) == (1.0, 1.0)
    assert 0.9 < e.low < 1.0


@pytest.mark.parametrize(("k", "n"), [(-1, 5), (6, 5), (0, -1)])
def test_impossible_counts_are_rejected(k: int, n: int) -> None:
    with pytest.raises(ValueError, match="successes"):
        proportion(k, n)


def test_fractional_counts_are_rejected_rather_than_truncated() -> None:
    with pytest.raises(TypeError):
        proportion(2.5, 5)  # type: ignore[arg-type]


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1, math.nan])
def test_confidence_must_lie_strictly_between_zero_and_one(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        proportion(1, 2, confidence)
    with pytest.raises(ValueError, match="confidence"):
        proportion_difference(1, 2, 1, 2, confidence)


def test_numpy_integer_counts_give_plain_ints() -> None:
    e = proportion(np.int64(3), np.int64(10))
    assert type(e.n) is int
    assert type(e.count) is int


@given(counts(), confidences)
def test_wilson_interval_is_ordered_inside_unit_interval_and_holds_the_value(
    kn: tuple[int, int], confidence: float
) -> None:
    e = proportion(*kn, confidence)
    assert 0.0 <= e.low <= e.high <= 1.0
    if kn[1]:
        assert e.low <= e.value <= e.high


@given(counts(), confidences, confidences)
def test_wilson_interval_widens_with_confidence(kn: tuple[int, int], c1: float, c2: float) -> None:
    lo, hi = sorted((c1, c2))
    narrow, wide = proportion(*kn, lo), proportion(*kn, hi)
    assert wide.low <= narrow.low + 1e-12
    assert wide.high >= narrow.high - 1e-12


@pytest.mark.parametrize(("k1", "n1", "k2", "n2", "low", "high"), NEWCOMBE_PUBLISHED)
def test_newcombe_matches_newcombes_published_intervals(
    k1: int, n1: int, k2: int, n2: int, low: float, high: float
) -> None:
    e = proportion_difference(k1, n1, k2, n2)
    assert e.value == pytest.approx(k1 / n1 - k2 / n2)
    assert (e.low, e.high) == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))
    assert e.n == n1 + n2
    assert e.count is None


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
@pytest.mark.parametrize(
    "counts4", [(0, 5, 0, 5), (5, 5, 5, 5), (3, 40, 9, 41), (120, 1000, 95, 1100), (1, 1, 0, 3)]
)
def test_newcombe_agrees_with_statsmodels(
    counts4: tuple[int, int, int, int], confidence: float
) -> None:
    k1, n1, k2, n2 = counts4
    low, high = confint_proportions_2indep(
        k1, n1, k2, n2, method="newcomb", compare="diff", alpha=1 - confidence
    )
    e = proportion_difference(k1, n1, k2, n2, confidence)
    assert (e.low, e.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))


@pytest.mark.parametrize("counts4", [(0, 0, 3, 10), (3, 10, 0, 0), (0, 0, 0, 0)])
def test_difference_with_an_empty_side_is_unknown_over_minus_one_to_one(
    counts4: tuple[int, int, int, int],
) -> None:
    e = proportion_difference(*counts4)
    assert math.isnan(e.value)
    assert (e.low, e.high) == (-1.0, 1.0)
    assert e.n == counts4[1] + counts4[3]


@given(counts(), counts(), confidences)
def test_newcombe_interval_is_ordered_inside_minus_one_to_one_and_holds_the_value(
    a: tuple[int, int], b: tuple[int, int], confidence: float
) -> None:
    e = proportion_difference(*a, *b, confidence)
    assert -1.0 <= e.low <= e.high <= 1.0
    if a[1] and b[1]:
        assert e.low <= e.value <= e.high


@given(counts(), counts(), confidences, confidences)
def test_newcombe_interval_widens_with_confidence(
    a: tuple[int, int], b: tuple[int, int], c1: float, c2: float
) -> None:
    lo, hi = sorted((c1, c2))
    narrow, wide = proportion_difference(*a, *b, lo), proportion_difference(*a, *b, hi)
    assert wide.low <= narrow.low + 1e-12
    assert wide.high >= narrow.high - 1e-12
