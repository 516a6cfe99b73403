"""What happened to each request: did it fail, and was its prediction right.

Element-wise functions over observation columns; they return boolean arrays that the per-arm
statistics count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlchaos.stats._estimate import Estimate
from mlchaos.stats._proportion import proportion

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["accuracy", "correct", "failed"]


def failed(status: npt.ArrayLike, error: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """A request failed when it got no response (``error != 0``) or a status outside [200, 400)."""
    import numpy as np  # noqa: PLC0415

    s = np.asarray(status)
    out: npt.NDArray[np.bool_] = (np.asarray(error) != 0) | (s < 200) | (s >= 400)
    return out


def correct(
    prediction: npt.ArrayLike, label: npt.ArrayLike, threshold: float | None = None
) -> npt.NDArray[np.bool_]:
    """Rows whose prediction matches the label; a row missing either (NaN) is never correct.

    With a ``threshold`` the prediction is a score and its class is 1.0 when
    ``prediction >= threshold``, else 0.0, compared with the label as a class (so a label other
    than 0 or 1 never matches); without one, prediction and label must be equal.
    """
    import numpy as np  # noqa: PLC0415

    p = np.asarray(prediction, dtype=np.float64)
    y = np.asarray(label, dtype=np.float64)
    out: npt.NDArray[np.bool_]
    if threshold is None:
        out = p == y  # NaN equals nothing
    else:
        predicted_class = np.where(p >= threshold, 1.0, 0.0)
        out = ~np.isnan(p) & (predicted_class == y)
    return out


def accuracy(
    prediction: npt.ArrayLike,
    label: npt.ArrayLike,
    *,
    threshold: float | None = None,
    confidence: float = 0.95,
) -> Estimate:
    """Share of correct predictions among rows carrying both a prediction and a label.

    Pass the rows of successful responses only: a failed request's prediction is not the
    model's. With no scorable row the estimate is NaN with interval [0, 1].
    """
    import numpy as np  # noqa: PLC0415

    p = np.asarray(prediction, dtype=np.float64)
    y = np.asarray(label, dtype=np.float64)
    scored = ~np.isnan(p) & ~np.isnan(y)
    hits = correct(p, y, threshold) & scored
    return proportion(int(hits.sum()), int(scored.sum()), confidence)
