"""Judging checks on observations: a metric check and the observations give a check result.

The runner uses this for guardrails (every tick) and the hypothesis (at the end); the report
uses it to rebuild every verdict from the journal, so both always agree.
"""

from mlchaos.analysis._evaluate import (
    CheckResult,
    CheckStatus,
    Unit,
    evaluate,
    fault_window_mask,
    format_value,
    guardrail_confidence,
    judge_hypothesis,
)
from mlchaos.analysis._plan import CheckPlan, plan, requests_needed
from mlchaos.analysis._ratio import SRM_NAME, arm_counts, doubts, sample_ratio_check

__all__ = [
    "SRM_NAME",
    "CheckPlan",
    "CheckResult",
    "CheckStatus",
    "Unit",
    "arm_counts",
    "doubts",
    "evaluate",
    "fault_window_mask",
    "format_value",
    "guardrail_confidence",
    "judge_hypothesis",
    "plan",
    "requests_needed",
    "sample_ratio_check",
]
