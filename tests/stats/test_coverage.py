"""Simulated coverage: on seeded data with a known truth, 95% intervals cover about 95% of the time.

Each simulation draws 2000 samples with the true parameter itself drawn at random per sample
(small counts and low rates, as in short fault windows), so the check is of average coverage
rather than of one lucky or unlucky point of the discrete coverage curve. The accepted band
[0.93, 0.97] is about four standard errors wide on each side; the harness's own tests below
show that it rejects a Wald interval and an interval built at the wrong confidence.
"""

from collections.abc import Callable
from statistics import NormalDist

import numpy as np
import pytest

from mlchaos.stats import proportion, proportion_difference, quantile

SEED = 20240611
RUNS = 2000
NOMINAL = 0.95
BAND = (0.93, 0.97)

Interval = Callable[[int, int], tuple[float, float]]


def _proportion_coverage(interval: Interval, seed: int = SEED) -> float:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.2, RUNS)
    n = rng.integers(10, 301, RUNS)
    k = rng.binomial(n, p)
    hits = 0
    for ki, ni, pi in zip(k.tolist(), n.tolist(), p.tolist(), strict=True):
        low, high = interval(ki, ni)
        hits += low <= pi <= high
    return hits / RUNS


def _wilson(k: int, n: int) -> tuple[float, float]:
    e = proportion(k, n, NOMINAL)
    return e.low, e.high


def _wald(k: int, n: int) -> tuple[float, float]:
    p = k / n
    half = 1.959964 * (p * (1 - p) / n) ** 0.5
    return p - half, p + half


def test_wilson_95_covers_the_true_rate_about_95_percent_of_the_time() -> None:
    coverage = _proportion_coverage(_wilson)
    assert BAND[0] <= coverage <= BAND[1], coverage


def test_the_coverage_check_rejects_the_wald_interval() -> None:
    """Wald undercovers at small counts; the band must be narrow enough to notice."""
    assert _proportion_coverage(_wald) < BAND[0]


def test_the_coverage_check_rejects_an_interval_at_the_wrong_confidence() -> None:
    def ninety(k: int, n: int) -> tuple[float, float]:
        e = proportion(k, n, 0.90)
        return e.low, e.high

    def ninety_nine(k: int, n: int) -> tuple[float, float]:
        e = proportion(k, n, 0.99)
        return e.low, e.high

    assert _proportion_coverage(ninety) < BAND[0]
    assert _proportion_coverage(ninety_nine) > BAND[1]


def test_newcombe_95_covers_the_true_difference_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(SEED)
    p1, p2 = rng.uniform(0.01, 0.2, (2, RUNS))
    n1, n2 = rng.integers(10, 301, (2, RUNS))
    k1, k2 = rng.binomial(n1, p1), rng.binomial(n2, p2)
    hits = 0
    for i in range(RUNS):
        e = proportion_difference(int(k1[i]), int(n1[i]), int(k2[i]), int(n2[i]), NOMINAL)
        hits += e.low <= p1[i] - p2[i] <= e.high
    coverage = hits / RUNS
    assert BAND[0] <= coverage <= BAND[1], coverage


@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_quantile_95_covers_the_true_lognormal_quantile_at_about_the_nominal_rate(
    q: float,
) -> None:
    """Order-statistic intervals never undercover; discreteness makes them slightly conservative.

    Sample sizes are drawn from 400 to 2000 so that the p99 interval is bounded on both sides.
    """
    rng = np.random.default_rng(SEED)
    truth = float(np.exp(NormalDist().inv_cdf(q)))  # standard lognormal
    hits = 0
    for n in rng.integers(400, 2001, RUNS).tolist():
        e = quantile(rng.lognormal(0.0, 1.0, n), q, NOMINAL)
        hits += e.low <= truth <= e.high
    coverage = hits / RUNS
    assert 0.94 <= coverage <= 0.975, coverage
