"""Train the demo's models on the synthetic world and measure how accurate they are.

Three models, all trained in about a second on one core from a seed:

* **primary** — logistic regression on ``[x1, x2, f1, f2, f3]``: the request's own inputs plus
  the entity's features as the pipeline computes them (the mean of its last second of noisy
  observations of the entity's hidden state);
* **fallback** — logistic regression on ``[x1, x2]`` only: what the gateway answers with when
  no primary replica can;
* **constant** — the majority class: the floor both must beat.

Training samples are drawn at random times (fresh ``x``, fresh label noise); test accuracy is
measured on the demo dataset's own rows (with their fixed label noise) at other random times,
so the numbers are those the demo's traffic should see. :func:`staleness_accuracy` measures
the primary model with features ``k`` seconds old, which is what a feature cache serves.
Fitting is Newton's method (IRLS) with a tiny ridge, in numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from mlchaos.demo._logistic import LinearModel
from mlchaos.demo._world import (
    DEFAULT_SEED,
    N_ENTITIES,
    NOISE_SD,
    World,
    make_dataset,
    row_noise,
)

__all__ = [
    "FALLBACK_FEATURES",
    "PRIMARY_FEATURES",
    "STALENESS_S",
    "staleness_accuracy",
    "train_models",
]

PRIMARY_FEATURES = ("x1", "x2", "f1", "f2", "f3")
FALLBACK_FEATURES = ("x1", "x2")
STORE_FEATURES = ("f1", "f2", "f3")
STALENESS_S = (0.0, 5.0, 10.0, 30.0, 60.0)
_TRAIN_ROWS = 20_000
_EPOCH = 1_764_355_200.0  # 2025-11-28T18:40:00Z; training times lie in the day after it
_DAY_S = 86_400.0
_STREAM_TRAIN = 10
_STREAM_TEST = 11

FloatArray = NDArray[np.float64]


def train_models(seed: int = DEFAULT_SEED, out_dir: Path | str = ".") -> dict[str, float]:
    """Train primary and fallback, write ``primary.json`` and ``fallback.json`` to ``out_dir``,
    and return test accuracies: ``{"primary", "fallback", "constant"}`` (fractions)."""
    world = World.from_seed(seed)
    rng = np.random.default_rng([seed, _STREAM_TRAIN])
    entity = rng.integers(0, N_ENTITIES, size=_TRAIN_ROWS).astype(np.int64)
    x = rng.normal(0.0, 1.0, size=(_TRAIN_ROWS, 2))
    t = _EPOCH + rng.uniform(0.0, _DAY_S, size=_TRAIN_ROWS)
    features = world.pipeline_features(entity, t, rng)
    y = world.labels(entity, x, t, rng.normal(0.0, NOISE_SD, size=_TRAIN_ROWS))

    defaults = {name: float(features[:, i].mean()) for i, name in enumerate(STORE_FEATURES)}
    primary = _fit("primary", PRIMARY_FEATURES, np.column_stack([x, features]), y, defaults)
    fallback = _fit("fallback", FALLBACK_FEATURES, x, y, defaults)
    majority = int(y.mean() >= 0.5)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    primary.save(out / "primary.json")
    fallback.save(out / "fallback.json")

    test = _TestSet(seed, world)
    fresh = test.features(0.0)
    return {
        "primary": test.accuracy(primary, np.column_stack([test.x, fresh])),
        "fallback": test.accuracy(fallback, test.x),
        "constant": float(np.mean(test.y == majority)),
    }


def staleness_accuracy(
    primary: LinearModel, seed: int = DEFAULT_SEED, ages: Sequence[float] = STALENESS_S
) -> dict[float, float]:
    """The primary model's test accuracy when its features are ``age`` seconds old."""
    test = _TestSet(seed, World.from_seed(seed))
    return {
        float(age): test.accuracy(primary, np.column_stack([test.x, test.features(age)]))
        for age in ages
    }


class _TestSet:
    """The dataset's rows at random send times, with their true labels at those times."""

    def __init__(self, seed: int, world: World) -> None:
        data = make_dataset(seed)
        self._world = world
        self._rng_seed = seed
        rng = np.random.default_rng([seed, _STREAM_TEST])
        self.entity = data.entity_id
        self.x = data.x
        self.t = _EPOCH + _DAY_S + rng.uniform(0.0, _DAY_S, size=data.rows)
        self.y = world.labels(self.entity, self.x, self.t, row_noise(seed, data.rows))

    def features(self, age: float) -> FloatArray:
        """Pipeline features computed ``age`` seconds before each send time (same noise)."""
        rng = np.random.default_rng([self._rng_seed, _STREAM_TEST, 1])
        return self._world.pipeline_features(self.entity, self.t - age, rng)

    def accuracy(self, model: LinearModel, values: FloatArray) -> float:
        z = values @ np.array(model.weights) + model.bias
        return float(np.mean((z >= 0).astype(np.int64) == self.y))


def _fit(
    name: str,
    names: Sequence[str],
    values: FloatArray,
    y: NDArray[np.int64],
    defaults: dict[str, float],
    *,
    ridge: float = 1e-6,
    iterations: int = 50,
) -> LinearModel:
    """Maximum-likelihood logistic regression by Newton's method (IRLS)."""
    design = np.column_stack([values, np.ones(values.shape[0])])
    beta = np.zeros(design.shape[1])
    penalty = ridge * np.eye(design.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        gradient = design.T @ (y - p) - penalty @ beta
        hessian = (design * (p * (1.0 - p))[:, None]).T @ design + penalty
        step = np.linalg.solve(hessian, gradient)
        beta = beta + step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return LinearModel(
        name=name,
        features=tuple(names),
        weights=tuple(float(b) for b in beta[:-1]),
        bias=float(beta[-1]),
        defaults=defaults,
    )
