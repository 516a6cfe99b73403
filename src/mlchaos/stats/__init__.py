"""Statistics of mlchaos: estimates with confidence intervals, per arm and between arms.

Pure functions over numpy arrays and the observation store; nothing here does I/O. Every
statistic is an :class:`Estimate` (value, interval, sample size, confidence):

- one proportion: :func:`proportion` (Wilson); two: :func:`proportion_difference` (Newcombe);
- quantiles: :func:`quantile` (distribution-free order-statistic interval) and
  :func:`ratio_of_quantiles`;
- request outcomes: :func:`failed`, :func:`error_causes`, :func:`correct`, :func:`accuracy`;
- ML quality: :func:`auc` and :func:`auc_difference` (DeLong), prediction drift :func:`psi`
  (against its no-change distribution) and :func:`ks` → :class:`DriftTest`;
- per arm and between arms: :func:`arm_stats` → :class:`ArmStats`, :func:`compare` →
  :class:`Comparison`.

numpy and scipy are imported inside the functions that use them, so importing this package
is cheap.
"""

from mlchaos.stats._arms import ArmStats, Comparison, arm_stats, compare, degradation_mask
from mlchaos.stats._auc import auc, auc_difference
from mlchaos.stats._cluster import design_effect, distinct_keys
from mlchaos.stats._curves import AGE_EDGES, CurvePoint, accuracy_by, largest_holding
from mlchaos.stats._drift import DriftTest, ks, ks_distance, psi
from mlchaos.stats._estimate import Estimate
from mlchaos.stats._outcomes import accuracy, correct, error_causes, failed
from mlchaos.stats._proportion import proportion, proportion_difference
from mlchaos.stats._quantile import quantile, ratio_of_quantiles
from mlchaos.stats._ratio import SRM_ALPHA, RatioTest, sample_ratio, sample_ratio_sequential
from mlchaos.stats._sequential import SequentialTest, msprt_difference, msprt_rate

__all__ = [
    "AGE_EDGES",
    "SRM_ALPHA",
    "ArmStats",
    "Comparison",
    "CurvePoint",
    "DriftTest",
    "Estimate",
    "RatioTest",
    "SequentialTest",
    "accuracy",
    "accuracy_by",
    "arm_stats",
    "auc",
    "auc_difference",
    "compare",
    "correct",
    "degradation_mask",
    "design_effect",
    "distinct_keys",
    "error_causes",
    "failed",
    "ks",
    "ks_distance",
    "largest_holding",
    "msprt_difference",
    "msprt_rate",
    "proportion",
    "proportion_difference",
    "psi",
    "quantile",
    "ratio_of_quantiles",
    "sample_ratio",
    "sample_ratio_sequential",
]
