"""Sample quantiles with distribution-free confidence intervals from order statistics.

For ``n`` independent draws from a continuous distribution, the number of draws below the true
``q``-quantile is Binomial(n, q), so a pair of order statistics ``x(l) <= x(u)`` (1-based)
brackets it with probability ``P(l <= B < u)``, whatever the distribution. ``l`` and ``u`` are
chosen to leave at most ``alpha / 2`` in each tail, so the interval is exact-or-conservative:
its coverage is at least the nominal confidence, and close to it once ``n`` is in the hundreds.

Small samples are reported as they are, not papered over: when even the sample minimum is too
likely to lie above the true quantile (``(1 - q)**n > alpha / 2``) the lower bound is ``-inf``,
and when even the maximum is too likely to lie below it (``q**n > alpha / 2``) the upper bound is
``+inf``. At 95% that means, for example, fewer than 6 observations leave the median unbounded
on both sides, and the p99 has no finite upper bound below 368 observations. Otherwise bounds are
observed values (at the extreme, the sample minimum or maximum).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlchaos.stats._estimate import Estimate, check_confidence

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["quantile", "quantiles", "ratio_of_quantiles"]


def quantile(values: npt.ArrayLike, q: float, confidence: float = 0.95) -> Estimate:
    """The sample ``q``-quantile of ``values`` with a distribution-free confidence interval.

    The point value is numpy's default (linear interpolation) quantile. NaN values are not
    observations and are dropped; ``n`` counts the rest. With no observations the value is NaN
    and the interval is ``[-inf, inf]``; for small samples see the module docstring.
    """
    return quantiles(values, [q], confidence)[0]


def quantiles(
    values: npt.ArrayLike, qs: Sequence[float], confidence: float = 0.95
) -> list[Estimate]:
    """Several quantiles of the same values, sorting them once."""
    import numpy as np  # noqa: PLC0415

    alpha = check_confidence(confidence)
    for q in qs:
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantile must be strictly between 0 and 1, got {q}")
    x = np.asarray(values, dtype=np.float64).ravel()
    x = np.sort(x[~np.isnan(x)])
    n = int(x.size)
    return [_one(x, n, q, alpha, confidence) for q in qs]


def ratio_of_quantiles(numerator: Estimate, denominator: Estimate) -> Estimate:
    """Ratio of two quantiles of non-negative quantities (latencies) from independent samples.

    The interval divides the numerator's low bound by the denominator's high bound and vice
    versa. Both intervals hold together with probability at least the product of their
    confidences, and that product is the confidence reported: two 95% intervals give a 90.25%
    interval for the ratio (compute both at ``sqrt(c)`` to get ``c``). Missing bounds fall back to
    ``[0, inf]``; ``n`` is the two sample sizes together.
    """
    value = _divide(numerator.value, denominator.value)
    low = _divide(max(numerator.low, 0.0), denominator.high)
    high = _divide(numerator.high, max(denominator.low, 0.0))
    return Estimate(
        value,
        0.0 if math.isnan(low) else low,
        math.inf if math.isnan(high) else high,
        numerator.n + denominator.n,
        numerator.confidence * denominator.confidence,
    )


def _one(x: np.ndarray[Any, Any], n: int, q: float, alpha: float, confidence: float) -> Estimate:
    if n == 0:
        return Estimate(math.nan, -math.inf, math.inf, 0, confidence)
    # numpy's "linear" method: interpolate at position (n - 1) q of the sorted values.
    h = (n - 1) * q
    i = min(math.floor(h), n - 1)
    j = min(i + 1, n - 1)
    value = float(x[i] + (h - i) * (x[j] - x[i]))
    lo_rank, hi_rank = _order_ranks(n, q, alpha)
    low = float(x[lo_rank - 1]) if lo_rank >= 1 else -math.inf
    high = float(x[hi_rank - 1]) if hi_rank <= n else math.inf
    # The interval is built around the true quantile, not this point estimate, and for tiny n
    # the interpolated value can fall outside it by a rank; widen rather than report it so.
    return Estimate(value, min(low, value), max(high, value), n, confidence)


def _order_ranks(n: int, q: float, alpha: float) -> tuple[int, int]:
    """1-based ranks ``(l, u)`` with ``P(B < l) <= alpha/2`` and ``P(B >= u) <= alpha/2``.

    ``B ~ Binomial(n, q)``; ``l`` is as large and ``u`` as small as that allows. ``l = 0`` and
    ``u = n + 1`` mean no order statistic is far enough out.
    """
    from scipy.special import bdtr  # noqa: PLC0415 - lighter than scipy.stats

    tail = alpha / 2.0
    # l - 1 is the largest k with P(B <= k) <= tail; u - 1 the smallest with P(B <= k) >= 1 - tail.
    lower = _smallest_k(n, q, tail)
    if bdtr(lower, n, q) > tail:
        lower -= 1
    upper = _smallest_k(n, q, 1.0 - tail)
    return lower + 1, upper + 1


def _smallest_k(n: int, q: float, y: float) -> int:
    """Smallest k in [0, n] with ``P(B <= k) >= y`` (the binomial quantile function)."""
    from scipy.special import bdtr, bdtrik  # noqa: PLC0415

    guess = bdtrik(y, n, q)
    k = 0 if math.isnan(guess) else min(max(math.ceil(guess), 0), n)
    # bdtrik inverts a continuous extension; settle on the integer by stepping.
    while k > 0 and bdtr(k - 1, n, q) >= y:
        k -= 1
    while k < n and bdtr(k, n, q) < y:
        k += 1
    return k


def _divide(x: float, y: float) -> float:
    if y == 0.0:
        return math.inf if x > 0.0 else math.nan
    return x / y
