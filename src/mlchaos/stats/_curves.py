"""Curves: a metric against a magnitude, such as accuracy against the age of the features used."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlchaos.stats._estimate import Estimate
from mlchaos.stats._outcomes import accuracy

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["AGE_EDGES", "CurvePoint", "accuracy_by", "largest_holding"]

AGE_EDGES: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, float("inf"))
"""Default bins of feature age, in seconds: each doubles the last."""


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """The metric over the rows whose magnitude lies in ``[low, high)``."""

    low: float
    high: float
    estimate: Estimate

    def to_dict(self) -> dict[str, Any]:
        high = None if self.high == float("inf") else self.high
        return {"low": self.low, "high": high, "estimate": self.estimate.to_dict()}


def accuracy_by(
    magnitude: npt.ArrayLike,
    prediction: npt.ArrayLike,
    label: npt.ArrayLike,
    *,
    edges: tuple[float, ...] = AGE_EDGES,
    threshold: float | None = None,
    confidence: float = 0.95,
) -> list[CurvePoint]:
    """Accuracy (Wilson interval) per bin of ``magnitude``; NaN magnitudes count nowhere, and
    bins without a scorable row are left out. Pass the rows of successful answers only."""
    import numpy as np  # noqa: PLC0415

    m = np.asarray(magnitude, dtype=np.float64)
    p = np.asarray(prediction, dtype=np.float64)
    y = np.asarray(label, dtype=np.float64)
    if not m.shape == p.shape == y.shape:
        raise ValueError("magnitude, prediction and label must have the same length")
    scorable = ~np.isnan(m) & ~np.isnan(p) & ~np.isnan(y)
    points = []
    for low, high in itertools.pairwise(edges):
        rows = scorable & (m >= low) & (m < high)
        if rows.any():
            est = accuracy(p[rows], y[rows], threshold=threshold, confidence=confidence)
            points.append(CurvePoint(low, high, est))
    return points


def largest_holding(points: list[CurvePoint], minimum: float) -> float | None:
    """The upper edge of the last bin, counting from the smallest magnitude, up to which every
    bin's interval lies at or above ``minimum`` (None if the first does not)."""
    largest = None
    for point in points:
        if point.estimate.low < minimum:
            break
        largest = point.high
    return largest
