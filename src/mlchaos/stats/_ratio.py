"""Sample-ratio mismatch: did the arms get the split they were configured with?

A proxy that drops the arm header, a client that retries only failed requests, or a bug in the
cohort hash all change how many requests each arm receives, and every comparison between arms is
then suspect. The observed split is tested against the configured one: at the end with Pearson's
chi-square on the two counts, and while the run goes on with the one-rate mixture SPRT on both
sides (valid however often it is checked). When requests cluster by key, the keys are counted
instead: it is keys that are assigned, each independently by its hash.

The threshold is strict (p < 0.001 by default, as experimentation platforms use): a mismatch
throws doubt on every verdict, so a false alarm must be rare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlchaos.stats._sequential import msprt_rate

__all__ = ["SRM_ALPHA", "RatioTest", "sample_ratio", "sample_ratio_sequential"]

SRM_ALPHA = 0.001


@dataclass(frozen=True, slots=True)
class RatioTest:
    """``first`` of ``first + second`` units went to the first arm, ``expected`` was its share;
    ``p_value`` of the chi-square test (NaN when there is nothing to test)."""

    first: int
    second: int
    expected: float
    p_value: float
    mismatch: bool

    @property
    def observed(self) -> float:
        total = self.first + self.second
        return self.first / total if total else math.nan


def sample_ratio(
    first: int, second: int, share_first: float, share_second: float, alpha: float = SRM_ALPHA
) -> RatioTest:
    """Pearson's chi-square (1 degree of freedom) of the counts against the configured shares."""
    from scipy.stats import chi2  # noqa: PLC0415

    total = first + second
    if total == 0 or share_first <= 0 or share_second <= 0:
        return RatioTest(first, second, math.nan, math.nan, False)
    expected = share_first / (share_first + share_second)
    e1, e2 = total * expected, total * (1 - expected)
    statistic = (first - e1) ** 2 / e1 + (second - e2) ** 2 / e2
    p = float(chi2.sf(statistic, 1))
    return RatioTest(first, second, expected, p, p < alpha)


def sample_ratio_sequential(
    first: int, second: int, share_first: float, share_second: float, alpha: float = SRM_ALPHA
) -> bool:
    """A mismatch found by a test that may be repeated after every request (two one-sided
    mixture SPRTs at alpha / 2 each)."""
    total = first + second
    if total == 0 or share_first <= 0 or share_second <= 0:
        return False
    expected = share_first / (share_first + share_second)
    return any(
        msprt_rate(first, total, bound=expected, side=side, alpha=alpha / 2).crossed
        for side in ("max", "min")
    )
