"""Prediction drift between two samples (control = reference, experiment = current): PSI, KS.

PSI's usual fixed thresholds (0.1 "moderate", 0.2 "large") ignore sample size: with no change
at all, PSI ≈ (1/n + 1/m)·chi2(B-1), so small samples cross 0.1 by chance alone. :func:`psi`
therefore decides against that null distribution at level ``alpha``; the fixed levels remain
useful as effect sizes. :func:`ks` is the two-sample Kolmogorov-Smirnov test.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["DriftTest", "ks", "psi"]

_EPS = 1e-4  # floor of a bin's share, so an empty bin does not make PSI infinite


@dataclass(frozen=True, slots=True)
class DriftTest:
    """``drift`` when ``statistic`` is beyond ``threshold`` (equivalently p < alpha)."""

    method: str
    statistic: float
    threshold: float
    p_value: float
    drift: bool
    n_reference: int
    n_current: int

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


def _finite(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    import numpy as np  # noqa: PLC0415

    a = np.asarray(values, dtype=np.float64)
    out: npt.NDArray[np.float64] = a[np.isfinite(a)]
    return out


def psi(
    reference: npt.ArrayLike, current: npt.ArrayLike, *, bins: int = 10, alpha: float = 0.05
) -> DriftTest:
    """Population stability index over bins of the reference (its quantiles, or its distinct
    values when it has at most ``bins`` of them — e.g. predicted classes), decided against
    its no-change distribution at level ``alpha``. Too little data: NaN, no drift."""
    import numpy as np  # noqa: PLC0415
    from scipy.stats import chi2  # noqa: PLC0415

    ref, cur = _finite(reference), _finite(current)
    n, m = ref.size, cur.size
    if n < 2 or m < 2:
        return DriftTest("psi", math.nan, math.nan, math.nan, False, n, m)
    distinct = np.unique(ref)
    if distinct.size <= bins:
        # one bin per value the reference takes, plus one for values it never takes
        ref_counts = np.array([np.count_nonzero(ref == v) for v in distinct] + [0])
        cur_in = [np.count_nonzero(cur == v) for v in distinct]
        cur_counts = np.array([*cur_in, m - sum(cur_in)])
        if cur_counts[-1] == 0:
            ref_counts, cur_counts = ref_counts[:-1], cur_counts[:-1]
    else:
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1))[1:-1])
        ref_counts = np.bincount(
            np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1
        )
        cur_counts = np.bincount(
            np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1
        )
    k = ref_counts.size
    if k < 2:
        return DriftTest("psi", 0.0, math.inf, 1.0, False, n, m)
    p = np.clip(ref_counts / n, _EPS, None)
    q = np.clip(cur_counts / m, _EPS, None)
    value = float(np.sum((q - p) * np.log(q / p)))
    scale = 1 / n + 1 / m
    threshold = scale * float(chi2.ppf(1 - alpha, k - 1))
    p_value = float(chi2.sf(value / scale, k - 1))
    return DriftTest("psi", value, threshold, p_value, value > threshold, n, m)


def ks(reference: npt.ArrayLike, current: npt.ArrayLike, *, alpha: float = 0.05) -> DriftTest:
    """Two-sample Kolmogorov-Smirnov (``scipy.stats.ks_2samp``); the threshold is the
    asymptotic critical distance c(alpha)·sqrt((n+m)/(n·m)). Too little data: NaN, no drift."""
    from scipy.stats import ks_2samp  # noqa: PLC0415

    ref, cur = _finite(reference), _finite(current)
    n, m = ref.size, cur.size
    if n < 2 or m < 2:
        return DriftTest("ks", math.nan, math.nan, math.nan, False, n, m)
    result = ks_2samp(ref, cur)
    threshold = math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))
    p_value = float(result.pvalue)
    return DriftTest("ks", float(result.statistic), threshold, p_value, p_value < alpha, n, m)
