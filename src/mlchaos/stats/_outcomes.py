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

__all__ = ["accuracy", "correct", "error_causes", "failed"]


def failed(status: npt.ArrayLike, error: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """A request failed when it got no response (``error != 0``) or a status outside [200, 400)."""
    import numpy as np  # noqa: PLC0415

    s = np.asarray(status)
    out: npt.NDArray[np.bool_] = (np.asarray(error) != 0) | (s < 200) | (s >= 400)
    return out


def error_causes(
    status: npt.ArrayLike, error: npt.ArrayLike, fault: npt.ArrayLike
) -> dict[str, int]:
    """How many of these requests failed for each cause (:func:`error_cause`), most first."""
    import numpy as np  # noqa: PLC0415

    from mlchaos.observations import error_cause  # noqa: PLC0415

    s, e, f = np.asarray(status), np.asarray(error), np.asarray(fault)
    bad = failed(s, e)
    if not bad.any():
        return {}
    combos, counts = np.unique(
        np.stack([s[bad], e[bad], f[bad]], axis=1), axis=0, return_counts=True
    )
    out: dict[str, int] = {}
    for (st, er, fa), n in zip(combos.tolist(), counts.tolist(), strict=True):
        cause = error_cause(int(st), int(er), int(fa)) or "other error"
        out[cause] = out.get(cause, 0) + int(n)
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


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
