"""The value every statistic returns: a point estimate with its confidence interval."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Estimate"]


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate and a two-sided confidence interval ``[low, high]``.

    ``n`` is the number of observations behind the estimate (both samples together for a
    two-sample statistic). ``count`` is the number of hits for a single proportion (so that a
    difference can be recomputed from two estimates) and ``None`` otherwise. ``value`` is NaN
    when there is no data; a bound is infinite when the data do not bound the quantity.
    ``design`` is a proportion's design effect (above 1 when its rows cluster by key: the
    interval is that of ``n / design`` independent rows).
    """

    value: float
    low: float
    high: float
    n: int
    confidence: float
    count: int | None = None
    design: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form; JSON has neither NaN nor infinity, so those become ``None``.
        ``design`` is written only when it is not 1."""
        out: dict[str, Any] = {
            "value": _finite_or_none(self.value),
            "low": _finite_or_none(self.low),
            "high": _finite_or_none(self.high),
            "n": self.n,
            "confidence": self.confidence,
            "count": self.count,
        }
        if self.design != 1.0:
            out["design"] = round(self.design, 4)
        return out


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def check_confidence(confidence: float) -> float:
    """The two-sided tail probability ``alpha`` for a confidence level strictly inside (0, 1)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")
    return 1.0 - confidence
