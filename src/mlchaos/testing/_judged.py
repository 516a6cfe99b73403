"""Assertions on rates and quantiles that are judged on their confidence interval.

``assert error_rate(outcomes) <= 0.01`` holds only when the interval's *upper* bound is at most
1%: a handful of lucky requests cannot pass a check their count cannot support, and a failure
says which it was — shown violated (the whole interval past the bound) or not decided (the
interval straddles it). The intervals are mlchaos's own: Wilson's for a rate, the
distribution-free order-statistic interval for a quantile.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlchaos.stats import Estimate

__all__ = ["Judged", "error_rate", "is_error", "latency_quantile"]


@dataclass(frozen=True)
class Judged:
    """An estimate with its interval, compared with a bound on that interval."""

    what: str
    estimate: Estimate
    unit: str = "%"  # how to show values: "%" or "s"

    def __le__(self, bound: float) -> bool:
        return self.estimate.high <= bound

    def __lt__(self, bound: float) -> bool:
        return self.estimate.high < bound

    def __ge__(self, bound: float) -> bool:
        return self.estimate.low >= bound

    def __gt__(self, bound: float) -> bool:
        return self.estimate.low > bound

    def show(self, value: float) -> str:
        if not math.isfinite(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.2%}" if self.unit == "%" else f"{value * 1000:.1f} ms"

    def __repr__(self) -> str:
        e = self.estimate
        return (
            f"{self.what} {self.show(e.value)} [{self.show(e.low)}, {self.show(e.high)}] "
            f"(n={e.n}, {e.confidence:.0%} interval)"
        )

    def explain(self, op: str, bound: float) -> str:
        """Why ``self OP bound`` did not hold."""
        e = self.estimate
        upper = op in ("<=", "<")
        edge = e.high if upper else e.low
        far = e.low if upper else e.high
        side = "upper" if upper else "lower"
        shown = f"the interval's {side} bound {self.show(edge)} is not {op} {self.show(bound)}"
        past = far > bound if upper else far < bound
        if past or (far == bound and op in ("<", ">")):
            return f"{shown}: shown violated (the whole interval is past the bound)"
        return f"{shown}: not decided — more observations would narrow the interval"


def is_error(outcome: Any) -> bool:
    """An outcome counts as an error when it is ``True``, an exception, or an HTTP status (an
    int, or a response's ``status_code`` / ``status``) of 500 or more."""
    if isinstance(outcome, bool):
        return outcome
    if isinstance(outcome, BaseException):
        return True
    status = outcome if isinstance(outcome, int) else None
    for name in ("status_code", "status"):
        if status is None and isinstance(getattr(outcome, name, None), int):
            status = getattr(outcome, name)
    if status is None:
        raise TypeError(
            f"cannot tell whether {outcome!r} is an error: give True/False, an exception, an "
            "HTTP status or a response"
        )
    return bool(status >= 500)


def error_rate(outcomes: Iterable[Any], confidence: float = 0.95) -> Judged:
    """The share of outcomes that are errors (:func:`is_error`), with Wilson's interval."""
    from mlchaos.stats import proportion  # noqa: PLC0415

    flags = [is_error(o) for o in outcomes]
    return Judged("error rate", proportion(sum(flags), len(flags), confidence))


def latency_quantile(latencies: Iterable[float], q: float, confidence: float = 0.95) -> Judged:
    """The ``q``-quantile of latencies in seconds, with its order-statistic interval (the p99
    needs 368 of them before its upper bound is finite)."""
    from mlchaos.stats import quantile  # noqa: PLC0415

    values = [float(v) for v in latencies]
    return Judged(f"p{q * 100:g} latency", quantile(values, q, confidence), unit="s")
