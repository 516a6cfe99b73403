"""ROC AUC with DeLong's variance, for one sample and for the difference of two independent ones.

DeLong, DeLong and Clarke-Pearson (1988), with Sun and Xu's midrank computation (2014): the
AUC is the Mann-Whitney statistic, its variance comes from the structural components of the
positives and the negatives. The interval is built on the logit scale, which keeps it inside
[0, 1] and covers better than the plain normal interval near 0 or 1 (an AUC of exactly 0 or 1
gets a degenerate interval: the data show no disagreement to estimate a variance from).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mlchaos.stats._estimate import Estimate

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["auc", "auc_difference"]


def _components(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[float, float, int]:
    """(AUC, DeLong variance, rows used); the AUC is NaN without both classes."""
    import numpy as np  # noqa: PLC0415
    from scipy.stats import rankdata  # noqa: PLC0415

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if s.shape != y.shape:
        raise ValueError(f"scores ({s.size}) and labels ({y.size}) differ in length")
    keep = ~np.isnan(s) & ~np.isnan(y)
    s, y = s[keep], y[keep]
    pos, neg = s[y == 1], s[y == 0]
    m, n = pos.size, neg.size
    if m == 0 or n == 0:
        return math.nan, math.nan, m + n
    ranks = rankdata(np.concatenate([pos, neg]))
    pos_ranks, neg_ranks = ranks[:m], ranks[m:]
    value = (pos_ranks.sum() - m * (m + 1) / 2) / (m * n)
    v10 = (pos_ranks - rankdata(pos)) / n  # per positive: share of negatives ranked below
    v01 = 1 - (neg_ranks - rankdata(neg)) / m  # per negative: share of positives above
    var10 = float(np.var(v10, ddof=1)) if m > 1 else 0.0
    var01 = float(np.var(v01, ddof=1)) if n > 1 else 0.0
    return float(value), var10 / m + var01 / n, m + n


def auc(scores: npt.ArrayLike, labels: npt.ArrayLike, confidence: float = 0.95) -> Estimate:
    """AUC of ``scores`` against 0/1 ``labels`` (NaN rows ignored), with a logit-scale interval.

    Without both classes: NaN with interval [0, 1].
    """
    from scipy.stats import norm  # noqa: PLC0415

    value, var, n = _components(scores, labels)
    if math.isnan(value):
        return Estimate(math.nan, 0.0, 1.0, n, confidence)
    if not 0 < value < 1 or var <= 0:
        return Estimate(value, value, value, n, confidence)
    z = float(norm.ppf(0.5 + confidence / 2))
    logit = math.log(value / (1 - value))
    half = z * math.sqrt(var) / (value * (1 - value))
    return Estimate(value, _expit(logit - half), _expit(logit + half), n, confidence)


def auc_difference(
    scores_a: npt.ArrayLike,
    labels_a: npt.ArrayLike,
    scores_b: npt.ArrayLike,
    labels_b: npt.ArrayLike,
    confidence: float = 0.95,
) -> Estimate:
    """AUC(a) - AUC(b) for two independent samples (arms): variances add; normal interval."""
    from scipy.stats import norm  # noqa: PLC0415

    a, b = _components(scores_a, labels_a), _components(scores_b, labels_b)
    if math.isnan(a[0]) or math.isnan(b[0]):
        return Estimate(math.nan, -1.0, 1.0, a[2] + b[2], confidence)
    value = a[0] - b[0]
    half = float(norm.ppf(0.5 + confidence / 2)) * math.sqrt(a[1] + b[1])
    return Estimate(value, max(-1.0, value - half), min(1.0, value + half), a[2] + b[2], confidence)


def _expit(x: float) -> float:
    return 1 / (1 + math.exp(-x))
