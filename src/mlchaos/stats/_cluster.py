"""Clustered traffic: requests that share a key (a user, an entity) are not independent.

When arms are assigned by key, every request of one key lands in the same arm, and keys differ:
one user's features are always missing, another's requests always time out. A rate's variance is
then larger than the binomial p(1-p)/n, and with few keys per arm (the demo's live cohorts have
4-5 users each) much larger: a test that assumes independence finds "differences" that are only
which users happened to fall in which arm.

:func:`design_effect` measures it: the cluster-robust (delta-method) variance of the ratio
estimate p = sum(k_j) / sum(n_j) over the per-key totals, with the small-sample factor
m / (m - 1) for m keys, divided by the binomial variance. Intervals and sequential tests then use
the effective sample size n / deff (Kish), which keeps the rate and widens the uncertainty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["design_effect", "distinct_keys"]


def design_effect(hits: npt.ArrayLike, keys: npt.ArrayLike) -> float:
    """How much larger the variance of the share of ``hits`` is than binomial, given each row's
    key code (-1: no key, an independent row). At least 1.

    With one key the rows are one independent unit (the design effect is the row count); with
    no hit or only hits the spread between keys cannot be estimated and it is 1.
    """
    import numpy as np  # noqa: PLC0415

    h = np.asarray(hits, dtype=np.float64)
    k = np.asarray(keys, dtype=np.int64)
    n = h.size
    if n == 0 or (k < 0).all():
        return 1.0
    total = float(h.sum())
    p = total / n
    if p <= 0.0 or p >= 1.0:
        return 1.0
    keyed = k >= 0
    _, which = np.unique(k[keyed], return_inverse=True)
    per_n = np.bincount(which).astype(np.float64)
    per_k = np.bincount(which, weights=h[keyed])
    singles = h[~keyed]  # rows without a key are clusters of one
    per_n = np.concatenate([per_n, np.ones(singles.size)])
    per_k = np.concatenate([per_k, singles])
    m = per_n.size
    if m < 2:
        return float(n)
    spread = float(((per_k - p * per_n) ** 2).sum()) * m / (m - 1)
    return max(1.0, spread / (n * p * (1.0 - p)))


def distinct_keys(keys: npt.ArrayLike) -> int:
    """How many different keys the rows carry (0 when none has a key)."""
    import numpy as np  # noqa: PLC0415

    k = np.asarray(keys, dtype=np.int64)
    keyed: npt.NDArray[np.int64] = k[k >= 0]
    return int(np.unique(keyed).size)
