"""Per-arm statistics over the observation store, and the experiment-versus-control comparison.

``arm_stats`` reads the store's columns once per arm, with vectorised numpy, and returns plain
estimates; ``compare`` combines two of them without going back to the store.

Which rows count for what:

- ``requests``: every row of the arm (inside the optional mask).
- ``errors``: share of those requests that :func:`failed`.
- ``latency``: quantiles over every request that got a response (``error == 0``), whatever its
  status: a slow 503 is slow. Requests with no response have no latency.
- ``accuracy``: over successful responses carrying both a prediction and a label; ``None``
  when no request of the arm carries a label (the run is not labelled).
- ``model_share``: for every model the store knows, its share of the arm's successful
  responses; responses from an unknown model count in the denominator only.
- ``silent``: share of successful responses that used degraded inputs or models (HTTP 2xx, so
  no availability check sees them: silent degradation), reported apart from errors;
  ``degraded``: the same per kind (``cached_features``, ``fallback_model`` ...), a response
  naming several kinds counting for each; both ``None``/empty unless the run extracts them.
- ``feature_age``: quantiles (p50, p99) of the age of the features answers used, over the
  answers that report one; empty otherwise.
- ``keys``: how many distinct keys (users, entities) the arm's requests came from. When they
  cluster, the error rate's interval is that of the effective sample (see ``design_effect``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlchaos.arms import ArmCode
from mlchaos.stats._cluster import design_effect, distinct_keys
from mlchaos.stats._estimate import Estimate
from mlchaos.stats._outcomes import accuracy, failed
from mlchaos.stats._proportion import proportion, proportion_difference
from mlchaos.stats._quantile import quantiles, ratio_of_quantiles

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from mlchaos.observations import ObservationStore

__all__ = [
    "LATENCY_QUANTILES",
    "ArmStats",
    "Comparison",
    "arm_stats",
    "compare",
    "degradation_mask",
]

LATENCY_QUANTILES: dict[str, float] = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


@dataclass(frozen=True, slots=True)
class ArmStats:
    """What one arm of traffic saw."""

    arm: ArmCode
    requests: int
    errors: Estimate
    latency: dict[str, Estimate]
    accuracy: Estimate | None
    model_share: dict[str, Estimate]
    silent: Estimate | None = None
    degraded: dict[str, Estimate] = field(default_factory=dict)
    feature_age: dict[str, Estimate] = field(default_factory=dict)
    keys: int = 0  # distinct keys (users, entities) its requests came from; 0: not keyed

    def to_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm.name.lower(),
            "requests": self.requests,
            "keys": self.keys,
            "errors": self.errors.to_dict(),
            "latency": {k: e.to_dict() for k, e in self.latency.items()},
            "accuracy": None if self.accuracy is None else self.accuracy.to_dict(),
            "model_share": {k: e.to_dict() for k, e in self.model_share.items()},
            "silent": None if self.silent is None else self.silent.to_dict(),
            "degraded": {k: e.to_dict() for k, e in self.degraded.items()},
            "feature_age": {k: e.to_dict() for k, e in self.feature_age.items()},
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """Experiment against control.

    ``error_rate_diff`` and ``accuracy_diff`` are experiment minus control (Newcombe), the
    latter ``None`` unless both arms are labelled. ``p99`` holds each arm's p99 by arm name;
    ``p99_ratio`` is experiment over control, at the product of the two confidences (see
    :func:`ratio_of_quantiles`).
    """

    error_rate_diff: Estimate
    accuracy_diff: Estimate | None
    p99: dict[str, Estimate]
    p99_ratio: Estimate

    def to_dict(self) -> dict[str, Any]:
        return {
            "error_rate_diff": self.error_rate_diff.to_dict(),
            "accuracy_diff": None if self.accuracy_diff is None else self.accuracy_diff.to_dict(),
            "p99": {k: e.to_dict() for k, e in self.p99.items()},
            "p99_ratio": self.p99_ratio.to_dict(),
        }


def arm_stats(
    store: ObservationStore,
    arm: ArmCode,
    *,
    mask: npt.NDArray[np.bool_] | None = None,
    confidence: float = 0.95,
    threshold: float | None = None,
) -> ArmStats:
    """Statistics of one arm over the store's rows, or over the rows ``mask`` selects."""
    import numpy as np  # noqa: PLC0415

    rows = store.column("arm") == int(arm)
    if mask is not None:
        if mask.shape != rows.shape:
            raise ValueError(f"mask has {mask.shape[0]} rows, the store {rows.shape[0]}")
        rows &= mask
    error = store.column("error")
    bad = failed(store.column("status"), error)
    n = int(np.count_nonzero(rows))
    keys = store.column("key")
    design = design_effect(bad[rows], keys[rows])
    errors = proportion(int(np.count_nonzero(bad & rows)), n, confidence, design)

    answered = rows & (error == 0)
    latency = dict(
        zip(
            LATENCY_QUANTILES,
            quantiles(
                store.column("latency")[answered], list(LATENCY_QUANTILES.values()), confidence
            ),
            strict=True,
        )
    )

    ok = rows & ~bad
    label = store.column("label")
    acc = None
    if np.any(~np.isnan(label[rows])):
        acc = accuracy(
            store.column("prediction")[ok],
            label[ok],
            threshold=threshold,
            confidence=confidence,
        )

    n_ok = int(np.count_nonzero(ok))
    # Model -1 (unknown) lands in bin 0; model i in bin i + 1.
    counts = np.bincount(store.column("model")[ok] + 1, minlength=len(store.models) + 1)
    share = {
        name: proportion(int(counts[i + 1]), n_ok, confidence)
        for i, name in enumerate(store.models)
    }
    silent, degraded = _degradation(store, ok, n_ok, confidence)
    ages = store.column("feature_age")
    aged = ages[ok & ~np.isnan(ages)]
    feature_age = {}
    if aged.size:
        feature_age = dict(
            zip(("p50", "p99"), quantiles(aged, [0.5, 0.99], confidence), strict=True)
        )
    return ArmStats(
        arm,
        n,
        errors,
        latency,
        acc,
        share,
        silent,
        degraded,
        feature_age,
        distinct_keys(keys[rows]),
    )


def degradation_mask(store: ObservationStore, kind: str | None = None) -> npt.NDArray[np.bool_]:
    """Rows whose answer used degraded inputs or models (of ``kind`` when given)."""
    import numpy as np  # noqa: PLC0415

    codes = store.column("degradation")
    if kind is None:
        out: npt.NDArray[np.bool_] = codes >= 0
        return out
    wanted = [i for i, d in enumerate(store.degradations) if kind in d.split(",")]
    return np.isin(codes, wanted)


def _degradation(
    store: ObservationStore, ok: npt.NDArray[np.bool_], n_ok: int, confidence: float
) -> tuple[Estimate | None, dict[str, Estimate]]:
    import numpy as np  # noqa: PLC0415

    if not store.degradations:
        return None, {}
    kinds = sorted({k for d in store.degradations for k in d.split(",") if k})
    silent = proportion(int(np.count_nonzero(degradation_mask(store) & ok)), n_ok, confidence)
    degraded = {
        kind: proportion(
            int(np.count_nonzero(degradation_mask(store, kind) & ok)), n_ok, confidence
        )
        for kind in kinds
    }
    return silent, degraded


def compare(experiment: ArmStats, control: ArmStats) -> Comparison:
    """Experiment against control, from two arms' statistics at the same confidence."""
    confidence = experiment.errors.confidence
    if not math.isclose(confidence, control.errors.confidence):
        raise ValueError(
            f"arms computed at different confidences: {confidence} and {control.errors.confidence}"
        )
    accuracy_diff = None
    if experiment.accuracy is not None and control.accuracy is not None:
        accuracy_diff = _difference(experiment.accuracy, control.accuracy)
    return Comparison(
        error_rate_diff=_difference(experiment.errors, control.errors),
        accuracy_diff=accuracy_diff,
        p99={"experiment": experiment.latency["p99"], "control": control.latency["p99"]},
        p99_ratio=ratio_of_quantiles(experiment.latency["p99"], control.latency["p99"]),
    )


def _difference(a: Estimate, b: Estimate) -> Estimate:
    if a.count is None or b.count is None:
        raise ValueError("a difference of proportions needs the counts behind both estimates")
    return proportion_difference(a.count, a.n, b.count, b.n, a.confidence, a.design, b.design)
