"""Evaluate one metric check over (a window of) the observation store."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from mlchaos.arms import ArmCode
from mlchaos.spec import Analysis, BoundKind, Judge, Metric, MetricCheck

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from mlchaos.observe import ObservationStore
    from mlchaos.stats import Estimate

__all__ = ["CheckResult", "CheckStatus", "evaluate", "fault_window_mask", "judge_hypothesis"]


class CheckStatus(StrEnum):
    """HELD: inside the bounds. VIOLATED: outside. UNSURE: the interval straddles a bound."""

    HELD = "held"
    VIOLATED = "violated"
    UNSURE = "unsure"
    NO_DATA = "no_data"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: CheckStatus
    estimate: Estimate | None
    bounds: str
    judge: Judge
    detail: str

    @property
    def held(self) -> bool:
        return self.status is CheckStatus.HELD

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "estimate": self.estimate.to_dict() if self.estimate else None,
            "bounds": self.bounds,
            "judge": self.judge.value,
            "detail": self.detail,
        }


def evaluate(
    check: MetricCheck,
    store: ObservationStore,
    *,
    mask: npt.NDArray[np.bool_] | None = None,
    confidence: float = 0.95,
    threshold: float | None = None,
) -> CheckResult:
    """Estimate the check's metric with its interval and judge it against the bounds."""
    import numpy as np  # noqa: PLC0415

    rows = np.ones(len(store), dtype=bool) if mask is None else mask
    arm = store.column("arm")
    mine = rows & (arm == ArmCode.of(check.arm))
    ctrl = rows & (arm == ArmCode.CONTROL) if check.relative_to else None
    n = int(mine.sum())
    if n == 0 or (ctrl is not None and not ctrl.any()) or n < check.min_samples:
        return _result(check, None, f"{n} observations (need {max(check.min_samples, 1)})")
    estimate = _estimate(check, store, mine, ctrl, confidence, threshold)
    if estimate is None or math.isnan(estimate.value):
        return _result(check, None, "no observations carry this metric")
    return _result(check, estimate, "")


def _estimate(
    check: MetricCheck,
    store: ObservationStore,
    mine: npt.NDArray[np.bool_],
    ctrl: npt.NDArray[np.bool_] | None,
    confidence: float,
    threshold: float | None,
) -> Estimate | None:
    from mlchaos import stats  # noqa: PLC0415

    status = store.column("status")
    error = store.column("error")
    failed = stats.failed(status, error)
    if check.metric is Metric.ERROR_RATE:
        return _rate(failed, mine, ctrl, confidence)
    if check.metric.is_latency:
        latency = store.column("latency")
        answered = error == 0
        q = check.metric.quantile
        if ctrl is None:
            return stats.quantile(latency[mine & answered], q, confidence)
        # Two independent intervals at sqrt(c) give the ratio's interval jointly at c.
        each = math.sqrt(confidence)
        est = stats.quantile(latency[mine & answered], q, each)
        base = stats.quantile(latency[ctrl & answered], q, each)
        return stats.ratio_of_quantiles(est, base)
    import numpy as np  # noqa: PLC0415

    if check.metric is Metric.ACCURACY:
        pred = store.column("prediction")
        label = store.column("label")

        scored = ~failed & ~np.isnan(pred) & ~np.isnan(label)
        right = stats.correct(pred, label, threshold) & scored
        if not (scored & mine).any():
            return None
        return _rate(right, mine & scored, None if ctrl is None else ctrl & scored, confidence)
    if check.metric.is_feature_age:
        ages = store.column("feature_age")
        return stats.quantile(
            ages[mine & ~failed & ~np.isnan(ages)], check.metric.quantile, confidence
        )
    ok = ~failed
    if check.metric is Metric.DEGRADED_SHARE:
        hits = stats.degradation_mask(store, check.kind)
        return _rate(hits, mine & ok, None if ctrl is None else ctrl & ok, confidence)
    # model share among successful responses
    model_col = store.column("model")
    code = store.models.index(check.model) if check.model in store.models else -2
    hits = model_col == code
    return _rate(hits, mine & ok, None if ctrl is None else ctrl & ok, confidence)


def _rate(
    hits: npt.NDArray[np.bool_],
    mine: npt.NDArray[np.bool_],
    ctrl: npt.NDArray[np.bool_] | None,
    confidence: float,
) -> Estimate:
    from mlchaos import stats  # noqa: PLC0415

    k1, n1 = int((hits & mine).sum()), int(mine.sum())
    if ctrl is None:
        return stats.proportion(k1, n1, confidence)
    return stats.proportion_difference(
        k1, n1, int((hits & ctrl).sum()), int(ctrl.sum()), confidence
    )


def _result(check: MetricCheck, est: Estimate | None, why: str) -> CheckResult:
    bounds = _bounds_text(check)
    if est is None:
        return CheckResult(check.describe(), CheckStatus.NO_DATA, None, bounds, check.judge, why)
    lo, hi = (est.value, est.value) if check.judge is Judge.POINT else (est.low, est.high)
    status = CheckStatus.HELD
    for bound, inside, outside in (
        (check.max, hi <= _v(check.max), lo > _v(check.max)),
        (check.min, lo >= _v(check.min), hi < _v(check.min)),
    ):
        if bound is None or inside:
            continue
        status = CheckStatus.VIOLATED if outside else _worse(status, CheckStatus.UNSURE)
        if status is CheckStatus.VIOLATED:
            break
    detail = f"{_fmt(check, est.value)} [{_fmt(check, est.low)}, {_fmt(check, est.high)}]"
    detail += f" n={est.n}; bound {bounds}"
    return CheckResult(check.describe(), status, est, bounds, check.judge, detail)


def _worse(a: CheckStatus, b: CheckStatus) -> CheckStatus:
    order = [CheckStatus.HELD, CheckStatus.UNSURE, CheckStatus.VIOLATED]
    return max(a, b, key=order.index)


def _v(bound: Any) -> float:
    return math.nan if bound is None else float(bound.value)


def _bounds_text(check: MetricCheck) -> str:
    parts = []
    if check.min is not None:
        parts.append(f">= {check.min}")
    if check.max is not None:
        parts.append(f"<= {check.max}")
    return " and ".join(parts)


def _fmt(check: MetricCheck, x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if check.bound_kind is BoundKind.RATIO:
        return f"{x:.2f}x"
    if check.bound_kind is BoundKind.TIME:
        return f"{x * 1000:.1f}ms" if x < 1 else f"{x:.2f}s"
    return f"{x * 100:+.2f}%" if check.relative_to else f"{x * 100:.2f}%"


def fault_window_mask(
    store: ObservationStore, windows: list[tuple[float, float]]
) -> npt.NDArray[np.bool_]:
    """Rows whose start falls inside any (wall-clock) fault window."""
    import numpy as np  # noqa: PLC0415

    start = store.column("start")
    mask = np.zeros(len(store), dtype=bool)
    for lo, hi in windows:
        mask |= (start >= lo) & (start <= hi)
    return mask


def judge_hypothesis(
    checks: list[MetricCheck],
    store: ObservationStore,
    windows: list[tuple[float, float]],
    analysis: Analysis,
) -> list[CheckResult]:
    """The verdict of each hypothesis check, the one way runner and report both compute it.

    With ``window: faults`` (and any fault injected) a check sees the requests sent inside a
    fault window, less the first ``settle`` of each; otherwise it sees them all.
    """
    results = []
    for check in checks:
        mask = None
        if analysis.window == "faults" and windows:
            settle = check.settle.seconds
            mask = fault_window_mask(store, [(lo + settle, hi) for lo, hi in windows])
        results.append(
            evaluate(
                check,
                store,
                mask=mask,
                confidence=analysis.confidence.fraction,
                threshold=analysis.threshold,
            )
        )
    return results
