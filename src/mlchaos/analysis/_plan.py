"""Sample size, planned rather than discovered: how many requests a check needs to be decidable.

A check is held when its interval lies inside the bounds. Even the best possible outcome (no
error at all, every answer from the fallback) gives an interval of a certain width, so below some
number of requests a check *cannot* hold, whatever the service does: "fallback >= 99%" needs about
380 requests of its arm at 95% confidence (Wilson's lower bound of 380 out of 380 is 99.0%), a p99
needs 368 before the data bound it from above at all. :func:`plan` sets that against the requests
of the arm the run will judge (replay traffic: rate, share and the judged part of the fault
windows), so ``validate`` and the start of a run say which checks will likely end unsure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

from mlchaos.spec import Judge, Metric, TrafficConfig

if TYPE_CHECKING:
    from mlchaos.spec import Experiment, MetricCheck

__all__ = ["CheckPlan", "plan", "requests_needed"]


@dataclass(frozen=True)
class CheckPlan:
    """Check ``name`` needs at least ``needed`` requests of ``arm`` (None: it can never hold on
    an interval, e.g. an error rate of at most 0%); the run judges about ``expected`` of them
    (None: unknown before the run, as with live traffic)."""

    name: str
    arm: str
    needed: int | None
    expected: int | None

    @property
    def short(self) -> bool:
        """The run will likely end with this check unsure."""
        if self.needed is None:
            return True
        return self.expected is not None and self.expected < self.needed

    def describe(self) -> str:
        if self.needed is None:
            return (
                f"'{self.name}' cannot be shown to hold on an interval even with the best outcome "
                "(the arms equal, nothing failing): widen the bound, or judge: point"
            )
        line = f"'{self.name}' needs ≈ {self.needed} {self.arm} requests"
        if self.expected is None:
            return line
        line += f"; this run judges ≈ {self.expected}"
        return line + (": it will likely end unsure" if self.short else "")


def requests_needed(check: MetricCheck, confidence: float) -> int | None:
    """The fewest requests of the check's arm with which its best possible outcome holds."""
    floor = max(check.min_samples, 1)
    if check.judge is Judge.POINT:
        return floor
    if check.metric.is_latency or check.metric.is_feature_age:
        each = math.sqrt(confidence) if check.relative_to else confidence
        needed = _quantile_bounded(check.metric.quantile, 1 - each) if check.max else 1
        return max(needed, floor)
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    counts = []
    # The best case for a max is no hit at all (Wilson's upper bound z²/(n+z²)), for a min every
    # request a hit; a difference with control is at best that of the experiment arm alone.
    for bound, best_at_zero in ((check.max, True), (check.min, False)):
        if bound is None:
            continue
        room = bound.value if best_at_zero else -bound.value if check.relative_to else None
        if room is None:  # an absolute min: n/(n+z²) >= min
            room = 1.0 - bound.value
        if room <= 0:
            return None
        counts.append(math.ceil(z * z * (1 - room) / room))
    return max([floor, *counts])


def _quantile_bounded(q: float, alpha: float) -> int:
    """The fewest values whose q-quantile has a finite upper confidence bound: the largest value
    bounds it once P(B <= n - 1) >= 1 - alpha/2 for B ~ Binomial(n, q), i.e. q^n <= alpha/2."""
    return max(math.ceil(math.log(alpha / 2) / math.log(q)), 1) if 0 < q < 1 else 1


def plan(exp: Experiment) -> list[CheckPlan]:
    """Each hypothesis check's plan, against the requests replay traffic will judge."""
    confidence = exp.analysis.confidence.fraction
    seconds = _judged_seconds(exp)
    out = []
    for check in exp.metric_checks:
        if check.metric in (Metric.AUC, Metric.PREDICTION_DRIFT):  # not shares of requests
            continue
        expected = None
        if isinstance(exp.traffic, TrafficConfig) and seconds is not None:
            share = getattr(exp.traffic.arms, check.arm.value).fraction
            settle = check.settle.seconds if exp.analysis.window == "faults" else 0.0
            judged = max(seconds - settle * max(len(exp.faults), 1), 0.0)
            expected = math.floor(exp.traffic.rate.per_second * share * judged)
        out.append(
            CheckPlan(
                check.describe(), check.arm.value, requests_needed(check, confidence), expected
            )
        )
    return out


def _judged_seconds(exp: Experiment) -> float | None:
    """Seconds of sending the hypothesis judges: the fault windows (less the request life at
    the end of those removed before the traffic ends), or the whole run."""
    total = exp.traffic.duration.seconds
    if exp.analysis.window == "all" or not exp.faults:
        return total
    timeout = exp.traffic.timeout.seconds
    spans = []
    for f in exp.faults:
        start, end = f.start.seconds, f.end(exp.traffic.duration)
        spans.append((start, end if end >= total else end - timeout))
    covered, reach = 0.0, -math.inf
    for start, end in sorted(spans):
        begin = max(start, reach)
        if end > begin:
            covered += end - begin
            reach = end
    return covered
