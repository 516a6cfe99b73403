"""Proportions and the difference of two independent proportions, with score intervals.

Wilson's score interval for one proportion and Newcombe's hybrid score interval (his method 10)
for a difference; both keep close to nominal coverage for small counts and rates near 0 or 1,
where the textbook Wald interval does not. The formulas are short closed forms, written out
here so that no heavy library is imported on the report path; the tests check them against
statsmodels and Newcombe's published examples.
"""

from __future__ import annotations

import math
import operator
from statistics import NormalDist

from mlchaos.stats._estimate import Estimate, check_confidence

__all__ = ["proportion", "proportion_difference"]


def proportion(successes: int, n: int, confidence: float = 0.95, design: float = 1.0) -> Estimate:
    """The share ``successes / n`` with Wilson's score interval.

    With ``n = 0`` the value is NaN and the interval is the whole of ``[0, 1]``. ``design``
    (a design effect, :func:`design_effect`) widens it for clustered rows: the interval is
    Wilson's at the effective sample size ``n / design``.
    """
    alpha = check_confidence(confidence)
    successes, n = _check_counts(successes, n)
    low, high = _wilson(successes / design, n / design, _z(alpha))
    value = successes / n if n else math.nan
    return Estimate(value, low, high, n, confidence, count=successes, design=design)


def proportion_difference(
    successes1: int,
    n1: int,
    successes2: int,
    n2: int,
    confidence: float = 0.95,
    design1: float = 1.0,
    design2: float = 1.0,
) -> Estimate:
    """``p1 - p2`` of two independent samples with Newcombe's hybrid score interval.

    When either sample is empty the value is NaN and the interval is ``[-1, 1]``. ``n`` of the
    result is ``n1 + n2``. ``design1``/``design2``: each sample's design effect (see
    :func:`proportion`).
    """
    alpha = check_confidence(confidence)
    successes1, n1 = _check_counts(successes1, n1)
    successes2, n2 = _check_counts(successes2, n2)
    if n1 == 0 or n2 == 0:
        return Estimate(math.nan, -1.0, 1.0, n1 + n2, confidence)
    z = _z(alpha)
    p1, p2 = successes1 / n1, successes2 / n2
    l1, u1 = _wilson(successes1 / design1, n1 / design1, z)
    l2, u2 = _wilson(successes2 / design2, n2 / design2, z)
    diff = p1 - p2
    low = diff - math.hypot(p1 - l1, u2 - p2)
    high = diff + math.hypot(u1 - p1, p2 - l2)
    return Estimate(diff, max(low, -1.0), min(high, 1.0), n1 + n2, confidence)


def _z(alpha: float) -> float:
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def _wilson(k: float, n: float, z: float) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    # At k = 0 or k = n one bound is exactly 0 or 1; rounding must not push it past.
    low = 0.0 if k == 0 else max(centre - half, 0.0)
    high = 1.0 if k == n else min(centre + half, 1.0)
    return low, high


def _check_counts(successes: int, n: int) -> tuple[int, int]:
    """Plain ints (numpy integers would not serialise), after checking the range."""
    successes, n = operator.index(successes), operator.index(n)
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    return successes, n
