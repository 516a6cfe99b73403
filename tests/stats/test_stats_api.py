"""The public surface of mlchaos.stats changes only on purpose."""

import json
import math
import subprocess
import sys

import pytest

import mlchaos.stats
from mlchaos.stats import Estimate


def test_public_names_are_pinned() -> None:
    assert mlchaos.stats.__all__ == [
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


def test_importing_stats_does_not_import_numpy_scipy_or_statsmodels() -> None:
    code = (
        "import sys, mlchaos.stats; "
        "print(sorted(m for m in ('numpy', 'scipy', 'statsmodels') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_estimate_to_dict_turns_nan_and_infinity_into_none_for_json() -> None:
    e = Estimate(math.nan, -math.inf, math.inf, 0, 0.95)
    d = e.to_dict()
    assert d == {
        "value": None,
        "low": None,
        "high": None,
        "n": 0,
        "confidence": 0.95,
        "count": None,
    }
    json.dumps(d, allow_nan=False)


def test_estimate_to_dict_keeps_finite_values_and_the_count() -> None:
    d = Estimate(0.25, 0.1, 0.4, 8, 0.9, count=2).to_dict()
    assert d == {"value": 0.25, "low": 0.1, "high": 0.4, "n": 8, "confidence": 0.9, "count": 2}


def test_estimate_is_frozen() -> None:
    e = Estimate(0.5, 0.0, 1.0, 2, 0.95)
    with pytest.raises(AttributeError):
        e.value = 0.6  # type: ignore[misc]
