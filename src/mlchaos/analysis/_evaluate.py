"""Evaluate one metric check over (a window of) the observation store."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from mlchaos.arms import ArmCode
from mlchaos.spec import Analysis, Bound, BoundKind, Judge, Metric, MetricCheck

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from mlchaos.observations import ObservationStore
    from mlchaos.stats import Estimate, SequentialTest

__all__ = [
    "CheckResult",
    "CheckStatus",
    "Unit",
    "evaluate",
    "fault_window_mask",
    "format_value",
    "guardrail_confidence",
    "judge_hypothesis",
]


class CheckStatus(StrEnum):
    """HELD: inside the bounds. VIOLATED: outside. UNSURE: the interval straddles a bound."""

    HELD = "held"
    VIOLATED = "violated"
    UNSURE = "unsure"
    NO_DATA = "no_data"


class Unit(StrEnum):
    """How a check's estimate reads: a share (``12.34%``), a difference of shares in points
    (``+1.23%``), a time (``123.4ms``, ``1.23s``) or a ratio (``1.23x``)."""

    SHARE = "share"
    POINTS = "points"
    SECONDS = "seconds"
    RATIO = "ratio"


def format_value(unit: Unit | str, x: float | None) -> str:
    """One number of a check in its unit, the way every output shows it."""
    if x is None or math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if unit == Unit.RATIO:
        return f"{x:.2f}x"
    if unit == Unit.SECONDS:
        return f"{x * 1000:.1f}ms" if x < 1 else f"{x:.2f}s"
    return f"{x * 100:+.2f}%" if unit == Unit.POINTS else f"{x * 100:.2f}%"


@dataclass(frozen=True)
class CheckResult:
    """A judged check: its status, the estimate with its interval in ``unit``, the bounds as
    text, and a line for people (``detail``) that nothing reads back."""

    name: str
    status: CheckStatus
    estimate: Estimate | None
    bounds: str
    judge: Judge
    detail: str
    unit: Unit | None = None

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
            "unit": None if self.unit is None else self.unit.value,
        }


def evaluate(
    check: MetricCheck,
    store: ObservationStore,
    *,
    mask: npt.NDArray[np.bool_] | None = None,
    confidence: float = 0.95,
    threshold: float | None = None,
    sequential: bool = False,
    baseline: npt.NDArray[np.bool_] | None = None,
) -> CheckResult:
    """Estimate the check's metric with its interval and judge it against the bounds.

    ``baseline``: the rows a ``relative_to: baseline`` check compares with (those sent before the
    first fault went in); without it such a check has no data.

    ``sequential`` (guardrails, checked every tick): a rate compared with control, an absolute
    rate or an absolute quantile is violated only when a mixture SPRT finds the bound crossed, so
    repeated looks keep the false-abort rate at most 1 - confidence. (A latency ratio against
    control is still judged on its fixed-sample interval.)
    """
    import numpy as np  # noqa: PLC0415

    rows = np.ones(len(store), dtype=bool) if mask is None else mask
    arm = store.column("arm")
    mine = rows & (arm == ArmCode.of(check.arm))
    ctrl = None
    if check.relative_to == "control":
        ctrl = rows & (arm == ArmCode.CONTROL)
    elif check.relative_to == "baseline":  # the same arm before the first fault went in
        before = np.zeros(len(store), dtype=bool) if baseline is None else baseline
        ctrl = before & (arm == ArmCode.of(check.arm))
    n = int(mine.sum())
    if n == 0 or n < check.min_samples:
        need = max(check.min_samples, 1)
        return _result(check, None, f"the {check.arm.value} arm: {n} observations (need {need})")
    if ctrl is not None and not ctrl.any():
        other = "control" if check.relative_to == "control" else "the baseline before the faults"
        return _result(check, None, f"{other}: no observations to compare with")
    estimate = _estimate(check, store, mine, ctrl, confidence, threshold)
    if estimate is None or math.isnan(estimate.value):
        return _result(check, None, "no observations carry this metric")
    result = _result(check, estimate, "")
    if check.metric in (Metric.AUC, Metric.PREDICTION_DRIFT):
        return result  # (not a rate: even as a guardrail, its fixed-sample interval judges it)
    if sequential and ctrl is not None and not check.metric.is_latency:
        return _sequential(check, store, mine, ctrl, result, confidence, threshold)
    if sequential and ctrl is None:
        return _always_valid(check, store, mine, result, confidence, threshold)
    more = _more_needed(check, estimate) if result.status is CheckStatus.UNSURE else None
    if more is not None:
        arms = " (both samples together)" if check.relative_to else ""
        return replace(
            result, detail=f"{result.detail}; ≈ {more} more requests{arms} would likely decide it"
        )
    return result


def _more_needed(check: MetricCheck, est: Estimate) -> int | None:
    """About how many more requests would narrow an unsure check's interval to clear the bound
    it straddles, if the estimate stays where it is (intervals narrow as 1/sqrt(n))."""
    value = est.value
    for bound in (check.max, check.min):
        if bound is None or not est.low <= bound.value <= est.high:
            continue
        gap = abs(value - bound.value)
        half = est.high - value if bound.value >= value else value - est.low
        if gap <= 0 or not math.isfinite(half) or half <= 0:
            return None  # on the bound, or unbounded: no amount can be promised
        return max(math.ceil(est.n * ((half / gap) ** 2 - 1)), 1)
    return None


def _always_valid(
    check: MetricCheck,
    store: ObservationStore,
    mine: npt.NDArray[np.bool_],
    result: CheckResult,
    confidence: float,
    threshold: float | None,
) -> CheckResult:
    """An absolute bound checked continuously: violated only when the mixture SPRT of one rate
    (:func:`mlchaos.stats.msprt_rate`) says it is crossed. A quantile bound is a rate bound:
    "p99 <= Y" is "at most 1% of answers take longer than Y"."""
    from mlchaos import stats  # noqa: PLC0415

    alpha = 1 - confidence
    tests: list[tuple[float, float, float]] = []  # (k, n, bound): rates that must stay below
    if check.metric.is_latency or check.metric.is_feature_age:
        values = _quantile_values(check, store, mine)
        q, size = check.metric.quantile, float(values.size)
        if check.max is not None:
            tests.append((float((values > check.max.value).sum()), size, 1.0 - q))
        if check.min is not None:
            tests.append((float((values < check.min.value).sum()), size, q))
    else:
        parts = _rate_parts(check, store, mine, None, threshold)
        assert parts is not None
        hits, den, _ = parts
        design = _design(store, hits, den)
        k, size = int((hits & den).sum()) / design, int(den.sum()) / design  # effective counts
        if check.max is not None:
            tests.append((k, size, check.max.value))
        if check.min is not None:
            tests.append((size - k, size, 1.0 - check.min.value))
    return _judged_sequentially(
        result,
        [
            stats.msprt_rate(events, total, bound=b, side="max", alpha=alpha)
            for events, total, b in tests
        ],
    )


def _judged_sequentially(result: CheckResult, tests: list[SequentialTest]) -> CheckResult:
    """``result`` judged by its sequential tests: violated only when one crossed its bound;
    otherwise held if its interval says so, else unsure."""
    crossed = [f"mSPRT {t.statistic:.3g} >= {t.threshold:.3g}" for t in tests if t.crossed]
    status = (
        CheckStatus.VIOLATED
        if crossed
        else (CheckStatus.HELD if result.status is CheckStatus.HELD else CheckStatus.UNSURE)
    )
    detail = result.detail + (
        "; " + ", ".join(crossed) if crossed else "; mSPRT: bound not crossed"
    )
    return replace(result, status=status, detail=detail)


def _sequential(
    check: MetricCheck,
    store: ObservationStore,
    mine: npt.NDArray[np.bool_],
    ctrl: npt.NDArray[np.bool_],
    result: CheckResult,
    confidence: float,
    threshold: float | None,
) -> CheckResult:
    """A comparison with control checked continuously: it is violated only when the mixture
    SPRT says the bound is crossed (valid however often it is checked); the interval cannot."""
    from mlchaos import stats  # noqa: PLC0415

    parts = _rate_parts(check, store, mine, ctrl, threshold)
    assert parts is not None
    hits, den1, den2 = parts
    assert den2 is not None
    d1, d2 = _design(store, hits, den1), _design(store, hits, den2)
    k1, n1 = int((hits & den1).sum()) / d1, int(den1.sum()) / d1  # effective counts
    k2, n2 = int((hits & den2).sum()) / d2, int(den2.sum()) / d2
    alpha = 1 - confidence
    sides: tuple[tuple[Literal["max", "min"], Bound | None], ...] = (
        ("max", check.max),
        ("min", check.min),
    )
    return _judged_sequentially(
        result,
        [
            stats.msprt_difference(k1, n1, k2, n2, bound=bound.value, side=side, alpha=alpha)
            for side, bound in sides
            if bound is not None
        ],
    )


def _estimate(
    check: MetricCheck,
    store: ObservationStore,
    mine: npt.NDArray[np.bool_],
    ctrl: npt.NDArray[np.bool_] | None,
    confidence: float,
    threshold: float | None,
) -> Estimate | None:
    from mlchaos import stats  # noqa: PLC0415

    if check.metric.is_latency or check.metric.is_feature_age:
        q = check.metric.quantile
        if ctrl is None:
            return stats.quantile(_quantile_values(check, store, mine), q, confidence)
        # Two independent intervals at sqrt(c) give the ratio's interval jointly at c.
        each = math.sqrt(confidence)
        est = stats.quantile(_quantile_values(check, store, mine), q, each)
        base = stats.quantile(_quantile_values(check, store, ctrl), q, each)
        return stats.ratio_of_quantiles(est, base)
    if check.metric is Metric.AUC:
        return _auc(store, mine, ctrl, confidence)
    if check.metric is Metric.PREDICTION_DRIFT:
        assert ctrl is not None  # the spec requires relative_to
        pred = store.column("prediction")
        ok = ~stats.failed(store.column("status"), store.column("error"))
        return stats.ks_distance(pred[ok & ctrl], pred[ok & mine], confidence)
    parts = _rate_parts(check, store, mine, ctrl, threshold)
    if parts is None:
        return None
    hits, mine, ctrl = parts
    return _rate(store, hits, mine, ctrl, confidence)


def _auc(
    store: ObservationStore,
    mine: npt.NDArray[np.bool_],
    ctrl: npt.NDArray[np.bool_] | None,
    confidence: float,
) -> Estimate | None:
    """ROC AUC over the successful, scored answers labelled 0 or 1 (DeLong), or its difference
    from the other sample's; None when the run is not labelled that way."""
    import numpy as np  # noqa: PLC0415

    from mlchaos import stats  # noqa: PLC0415

    pred, label = store.column("prediction"), store.column("label")
    ok = ~stats.failed(store.column("status"), store.column("error")) & np.isin(label, (0, 1))
    ok &= ~np.isnan(pred)
    if not (ok & mine).any():
        return None
    if ctrl is None:
        return stats.auc(pred[ok & mine], label[ok & mine], confidence)
    a, b = ok & mine, ok & ctrl
    return stats.auc_difference(pred[a], label[a], pred[b], label[b], confidence)


def _quantile_values(
    check: MetricCheck, store: ObservationStore, rows: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """The values a quantile metric is taken over: latencies of answered requests, or the
    feature ages of successful answers that carry one."""
    import numpy as np  # noqa: PLC0415

    from mlchaos import stats  # noqa: PLC0415

    if check.metric.is_latency:
        values: npt.NDArray[np.float64] = store.column("latency")[
            rows & (store.column("error") == 0)
        ]
        return values
    ages = store.column("feature_age")
    ok = ~stats.failed(store.column("status"), store.column("error"))
    kept: npt.NDArray[np.float64] = ages[rows & ok & ~np.isnan(ages)]
    return kept


def _rate_parts(
    check: MetricCheck,
    store: ObservationStore,
    mine: npt.NDArray[np.bool_],
    ctrl: npt.NDArray[np.bool_] | None,
    threshold: float | None,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_] | None] | None:
    """For a rate metric: the rows that count as hits, and each arm's denominator rows."""
    import numpy as np  # noqa: PLC0415

    from mlchaos import stats  # noqa: PLC0415

    failed = stats.failed(store.column("status"), store.column("error"))
    if check.metric is Metric.ERROR_RATE:
        return failed, mine, ctrl
    if check.metric in (Metric.ACCURACY, Metric.PRECISION, Metric.RECALL):
        pred, label = store.column("prediction"), store.column("label")
        scored = ~failed & ~np.isnan(pred) & ~np.isnan(label)
        if not (scored & mine).any():
            return None
        if check.metric is Metric.ACCURACY:
            right = stats.correct(pred, label, threshold) & scored
            return right, mine & scored, None if ctrl is None else ctrl & scored
        positive = (pred >= threshold) if threshold is not None else (pred == 1.0)
        truly = label == 1.0
        if check.metric is Metric.PRECISION:  # among predicted positives
            hits, base = truly, scored & positive
        else:  # recall: among true positives
            hits, base = positive, scored & truly
        return hits & base, mine & base, None if ctrl is None else ctrl & base
    ok = ~failed  # shares among successful responses
    if check.metric is Metric.DEGRADED_SHARE:
        hits = stats.degradation_mask(store, check.kind)
    else:
        code = store.models.index(check.model) if check.model in store.models else -2
        hits = store.column("model") == code
    return hits, mine & ok, None if ctrl is None else ctrl & ok


def _rate(
    store: ObservationStore,
    hits: npt.NDArray[np.bool_],
    mine: npt.NDArray[np.bool_],
    ctrl: npt.NDArray[np.bool_] | None,
    confidence: float,
) -> Estimate:
    """A share (or a difference of shares), its interval widened by each arm's design effect
    when its requests cluster by key."""
    from mlchaos import stats  # noqa: PLC0415

    k1, n1 = int((hits & mine).sum()), int(mine.sum())
    if ctrl is None:
        return stats.proportion(k1, n1, confidence, _design(store, hits, mine))
    k2, n2 = int((hits & ctrl).sum()), int(ctrl.sum())
    d1, d2 = _design(store, hits, mine), _design(store, hits, ctrl)
    return stats.proportion_difference(k1, n1, k2, n2, confidence, d1, d2)


def _design(
    store: ObservationStore, hits: npt.NDArray[np.bool_], rows: npt.NDArray[np.bool_]
) -> float:
    """The design effect of the share of ``hits`` among ``rows``, clustered by key."""
    from mlchaos import stats  # noqa: PLC0415

    return stats.design_effect(hits[rows], store.column("key")[rows])


def _result(check: MetricCheck, est: Estimate | None, why: str) -> CheckResult:
    bounds = _bounds_text(check)
    unit = _unit(check)
    if est is None:
        return CheckResult(
            check.describe(), CheckStatus.NO_DATA, None, bounds, check.judge, why, unit
        )
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
    values = [format_value(unit, x) for x in (est.value, est.low, est.high)]
    detail = f"{values[0]} [{values[1]}, {values[2]}] n={est.n}; bound {bounds}"
    return CheckResult(check.describe(), status, est, bounds, check.judge, detail, unit)


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


def _unit(check: MetricCheck) -> Unit:
    if check.bound_kind is BoundKind.RATIO:
        return Unit.RATIO
    if check.bound_kind is BoundKind.TIME:
        return Unit.SECONDS
    if check.relative_to and check.metric is not Metric.PREDICTION_DRIFT:
        return Unit.POINTS  # a difference of shares (a distance is a share)
    return Unit.SHARE


def guardrail_confidence(guardrails: list[MetricCheck], confidence: float) -> float:
    """The confidence each guardrail is judged at so that all of them together abort a
    harmless run with probability at most ``1 - confidence``: Bonferroni, the error rate split
    evenly across every bound (a guardrail with both a max and a min counts twice)."""
    bounds = sum((g.max is not None) + (g.min is not None) for g in guardrails)
    return 1 - (1 - confidence) / max(bounds, 1)


def fault_window_mask(
    store: ObservationStore, windows: list[tuple[float, float]], horizon: float | None = 0.0
) -> npt.NDArray[np.bool_]:
    """Rows chosen by send time alone: sent at or after a (wall-clock) window's start and at
    least ``horizon`` (the client's timeout: the longest a request lives) before its end.

    Every such request lived wholly inside the window whatever its outcome. Choosing by when
    requests were *answered* instead would select by outcome: a timeout sent late in the window
    ends after it and would drop out while an instant injected error stays in.

    ``horizon=None`` is that older rule (sent and answered inside), kept only to rebuild the
    verdicts of journals written under it.
    """
    import numpy as np  # noqa: PLC0415

    start = store.column("start")
    end = start + store.column("latency") if horizon is None else start + horizon
    mask = np.zeros(len(store), dtype=bool)
    for lo, hi in windows:
        mask |= (start >= lo) & (end <= hi)
    return mask


def judge_hypothesis(
    checks: list[MetricCheck],
    store: ObservationStore,
    windows: list[tuple[float, float]],
    analysis: Analysis,
    doubts: Sequence[str] = (),
    horizon: float | None = 0.0,
) -> list[CheckResult]:
    """The verdict of each hypothesis check, the one way runner and report both compute it.

    With ``window: faults`` (and any fault injected) a check sees the requests sent inside a
    fault window, less those sent in the first ``settle`` of each and in the last ``horizon``
    (the client's timeout: see :func:`fault_window_mask`); otherwise it sees them all.
    ``doubts`` are reasons the hypothesis was not put to the test (a fault that never fired, arms
    that did not get their split): every check that judged anything is then unsure. A check
    ``relative_to: baseline`` compares with the requests that ended before the first fault.
    """
    baseline = None
    if windows:
        first = min(lo for lo, _ in windows)
        baseline = fault_window_mask(store, [(-math.inf, first)], horizon)
    results = []
    for check in checks:
        mask = None
        if analysis.window == "faults" and windows:
            settle = check.settle.seconds
            mask = fault_window_mask(store, [(lo + settle, hi) for lo, hi in windows], horizon)
        result = evaluate(
            check,
            store,
            mask=mask,
            confidence=analysis.confidence.fraction,
            threshold=analysis.threshold,
            baseline=baseline,
        )
        if doubts and result.status is not CheckStatus.NO_DATA:
            result = replace(
                result,
                status=CheckStatus.UNSURE,
                detail=f"{'; '.join(doubts)}; measured: {result.detail}",
            )
        results.append(result)
    return results
