"""The toy binary classifier the test upstream serves, and a synthetic dataset that goes with it.

The model is a fixed linear score over four features: it predicts 1 when the score is positive.
The dataset is synthetic (standard normal features from a seed) and honest about it: its
``label`` agrees with the model on about 90% of rows because one label in ten is flipped.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from pathlib import Path

__all__ = ["TOY_FEATURES", "TOY_MODEL", "make_dataset", "toy_predict", "toy_score"]

TOY_MODEL = "toy"
TOY_FEATURES = ("x0", "x1", "x2", "x3")
_WEIGHTS = (1.0, -0.8, 0.6, 0.4)
_BIAS = 0.1
_LABEL_NOISE = 0.1


def toy_score(features: Sequence[float]) -> float:
    """The toy model's linear score of one row of four features."""
    if len(features) != len(_WEIGHTS):
        raise ValueError(f"the toy model takes {len(_WEIGHTS)} features, got {len(features)}")
    return _BIAS + sum(w * x for w, x in zip(_WEIGHTS, features, strict=True))


def toy_predict(features: Sequence[float]) -> int:
    """The toy model's class for one row: 1 when its score is positive, else 0."""
    return int(toy_score(features) > 0)


def make_dataset(path: str | Path, rows: int, seed: int = 0) -> Path:
    """Write a deterministic CSV: ``entity_id``, features ``x0..x3`` and a noisy ``label``.

    The same ``rows`` and ``seed`` always give the same bytes. Returns the path written.
    """
    if rows < 1:
        raise ValueError(f"rows must be positive, got {rows}")
    rng = random.Random(seed)
    p = Path(path)
    with p.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["entity_id", *TOY_FEATURES, "label"])
        for i in range(rows):
            features = [round(rng.gauss(0.0, 1.0), 4) for _ in TOY_FEATURES]
            label = toy_predict(features)
            if rng.random() < _LABEL_NOISE:
                label = 1 - label
            writer.writerow([1000 + i, *(f"{x:.4f}" for x in features), label])
    return p
