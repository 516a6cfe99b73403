"""Quantiles with order-statistic intervals, and ratios of quantiles."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import binom

from mlchaos.stats import Estimate, quantile, ratio_of_quantiles
from mlchaos.stats._quantile import _order_ranks

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
samples = arrays(np.float64, st.integers(min_value=1, max_value=300), elements=finite)
probabilities = st.floats(min_value=0.001, max_value=0.999)
confidences = st.floats(min_value=0.5, max_value=0.999)


def test_median_of_one_to_a_hundred_uses_the_textbook_ranks_40_and_61() -> None:
    """The classic 95% table for n = 100 brackets the median by x(40) and x(61)."""
    e = quantile(np.arange(1.0, 101.0), 0.5)
    assert (e.value, e.low, e.high, e.n) == (50.5, 40.0, 61.0, 100)
    assert e.count is None


def test_order_ranks_agree_with_brute_force_binomial_tails() -> None:
    for n in [1, 2, 5, 6, 19, 20, 100, 367, 368, 2500]:
        for q in [0.01, 0.1, 0.5, 0.9, 0.95, 0.99]:
            for alpha in [0.01, 0.05, 0.2]:
                cdf = binom.cdf(np.arange(n + 1), n, q)
                below = np.flatnonzero(cdf <= alpha / 2)
                lower = int(below.max()) + 1 if below.size else 0
                upper = int(np.flatnonzero(cdf >= 1 - alpha / 2).min()) + 1
                assert _order_ranks(n, q, alpha) == (lower, upper), (n, q, alpha)


def test_five_observations_leave_the_median_unbounded_at_95_percent() -> None:
    """0.5**5 > 0.025: even the sample minimum may lie above the true median too often."""
    e = quantile([3.0, 1.0, 4.0, 1.5, 9.0], 0.5)
    assert e.value == 3.0
    assert (e.low, e.high) == (-math.inf, math.inf)


def test_six_observations_bound_the_median_by_the_sample_extremes() -> None:
    e = quantile([3.0, 1.0, 4.0, 1.5, 9.0, 2.0], 0.5)
    assert (e.low, e.high) == (1.0, 9.0)


def test_p99_has_no_finite_upper_bound_below_368_observations() -> None:
    x = np.arange(367.0)
    assert quantile(x, 0.99).high == math.inf
    assert quantile(np.arange(368.0), 0.99).high == 367.0


def test_quantile_of_nothing_is_unknown_and_unbounded() -> None:
    e = quantile(np.array([]), 0.99)
    assert math.isnan(e.value)
    assert (e.low, e.high, e.n) == (-math.inf, math.inf, 0)


def test_nan_values_are_not_observations() -> None:
    e = quantile([np.nan, 1.0, 2.0, np.nan, 3.0], 0.5)
    assert (e.value, e.n) == (2.0, 3)
    assert math.isnan(quantile([np.nan, np.nan], 0.5).value)


@pytest.mark.parametrize("q", [0.0, 1.0, -0.5, 1.5, math.nan])
def test_quantile_level_must_lie_strictly_between_zero_and_one(q: float) -> None:
    with pytest.raises(ValueError, match="quantile"):
        quantile([1.0, 2.0], q)


@given(samples, probabilities)
def test_point_value_is_numpys_default_quantile(x: np.ndarray, q: float) -> None:
    assert quantile(x, q).value == pytest.approx(float(np.quantile(x, q)), rel=1e-12, abs=1e-9)


@given(samples, probabilities, confidences)
def test_interval_is_ordered_holds_the_value_and_ends_on_observations_or_infinity(
    x: np.ndarray, q: float, confidence: float
) -> None:
    e = quantile(x, q, confidence)
    assert e.low <= e.value <= e.high
    for bound in (e.low, e.high):
        assert math.isinf(bound) or bound in x or bound == e.value


@given(samples, probabilities, confidences, confidences)
def test_interval_widens_with_confidence(x: np.ndarray, q: float, c1: float, c2: float) -> None:
    lo, hi = sorted((c1, c2))
    narrow, wide = quantile(x, q, lo), quantile(x, q, hi)
    assert wide.low <= narrow.low
    assert wide.high >= narrow.high


def test_ratio_divides_values_and_crosses_the_bounds() -> None:
    num = Estimate(2.0, 1.5, 3.0, 100, 0.95)
    den = Estimate(1.0, 0.5, 1.2, 200, 0.95)
    r = ratio_of_quantiles(num, den)
    assert r.value == 2.0
    assert (r.low, r.high) == (pytest.approx(1.5 / 1.2), 6.0)
    assert r.n == 300
    assert r.confidence == pytest.approx(0.95**2)


def test_ratio_with_no_data_is_unknown_between_zero_and_infinity() -> None:
    r = ratio_of_quantiles(quantile([], 0.99), quantile([], 0.99))
    assert math.isnan(r.value)
    assert (r.low, r.high) == (0.0, math.inf)


def test_ratio_over_a_quantile_known_to_be_zero_is_infinite() -> None:
    r = ratio_of_quantiles(Estimate(1.0, 0.5, 2.0, 5, 0.95), Estimate(0.0, 0.0, 0.0, 5, 0.95))
    assert (r.value, r.low, r.high) == (math.inf, math.inf, math.inf)


def test_ratio_whose_denominator_may_be_zero_has_no_upper_bound() -> None:
    r = ratio_of_quantiles(Estimate(1.0, 0.5, 2.0, 5, 0.95), Estimate(1.0, 0.0, 2.0, 5, 0.95))
    assert (r.value, r.low, r.high) == (1.0, 0.25, math.inf)


def test_ratio_of_identical_latency_samples_brackets_one() -> None:
    x = np.random.default_rng(7).lognormal(-3, 0.5, 5000)
    r = ratio_of_quantiles(quantile(x, 0.99), quantile(x, 0.99))
    assert r.value == 1.0
    assert r.low < 1.0 < r.high
