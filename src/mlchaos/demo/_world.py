"""The demo's synthetic world: entities whose hidden state drifts with time, and the labels.

Everything is synthetic and deterministic from a seed (7 by default). There are
:data:`N_ENTITIES` entities (``entity_id`` 0..199); each has a hidden state ``s_e(t)`` in R³
that moves with wall-clock time ``t`` (unix seconds): per dimension ``A·sin(2πt/P + φ)`` with
a period ``P`` between 40 and 90 s, so features that are 10 s stale are measurably worse than
fresh ones and 30 s or more are much worse. A request is a dataset row ``entity_id, x1, x2``;
its true label at time ``t`` is ``1[w_x·x + w_s·s_e(t) + b + ε_row > 0]`` where ``ε_row`` is
fixed per row (label noise), and the entity's state weighs more than ``x``.

The feature pipeline observes each entity's state with noise (:meth:`World.observe`) and
averages the last :data:`FEATURE_WINDOW_S` of observations; :meth:`World.pipeline_features`
simulates exactly that for training. :class:`LabelOracle` answers the label service's
questions. The dataset file (``examples/data/demo.csv``) holds only ``entity_id,x1,x2``:
labels depend on the time a request is sent, so they come from the label service.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DEFAULT_SEED",
    "FEATURE_INTERVAL_S",
    "FEATURE_WINDOW_S",
    "N_ENTITIES",
    "DemoDataset",
    "LabelOracle",
    "LabelRequest",
    "World",
    "make_dataset",
    "row_noise",
    "write_dataset",
]

DEFAULT_SEED = 7
N_ENTITIES = 200
DEFAULT_ROWS = 4000
STATE_DIMS = 3
FEATURE_WINDOW_S = 1.0  # features are the mean of this much of the latest observations
FEATURE_INTERVAL_S = 0.25  # the pipeline's default interval between observations
OBS_SD = 0.5  # noise of one observation of the state
NOISE_SD = 0.5  # label noise ε_row
W_X = (0.8, -0.6)
W_S = (1.2, -1.0, 0.9)
BIAS = 0.2
PERIOD_RANGE_S = (40.0, 90.0)
AMPLITUDE_RANGE = (0.8, 1.3)

# Independent random streams from one seed: SeedSequence([seed, stream]).
_STREAM_WORLD = 0
_STREAM_DATASET = 1
_STREAM_ROW_NOISE = 2

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


@dataclass(frozen=True)
class World:
    """The entities' hidden dynamics, drawn from ``seed``; the label rule is fixed."""

    seed: int
    amplitude: FloatArray  # (N_ENTITIES, 3)
    period: FloatArray  # (N_ENTITIES, 3), seconds
    phase: FloatArray  # (N_ENTITIES, 3), radians

    @classmethod
    def from_seed(cls, seed: int = DEFAULT_SEED) -> World:
        """The world of ``seed``: the same seed always gives the same entities."""
        rng = _rng(seed, _STREAM_WORLD)
        shape = (N_ENTITIES, STATE_DIMS)
        return cls(
            seed=seed,
            amplitude=rng.uniform(*AMPLITUDE_RANGE, size=shape),
            period=rng.uniform(*PERIOD_RANGE_S, size=shape),
            phase=rng.uniform(0.0, 2.0 * math.pi, size=shape),
        )

    def state(self, entity: IntArray, t: FloatArray | float) -> FloatArray:
        """True hidden states ``s_e(t)``, shape ``(n, 3)``, of ``entity[i]`` at time ``t[i]``."""
        times = np.broadcast_to(np.asarray(t, dtype=np.float64), entity.shape)[:, None]
        angle = 2.0 * math.pi * (times / self.period[entity]) + self.phase[entity]
        result: FloatArray = self.amplitude[entity] * np.sin(angle)
        return result

    def observe(
        self, entity: IntArray, t: FloatArray | float, rng: np.random.Generator
    ) -> FloatArray:
        """One noisy observation of each entity's state at ``t``: what an event carries."""
        state = self.state(entity, t)
        noisy: FloatArray = state + rng.normal(0.0, OBS_SD, size=state.shape)
        return noisy

    def pipeline_features(
        self,
        entity: IntArray,
        t: FloatArray | float,
        rng: np.random.Generator,
        interval: float = FEATURE_INTERVAL_S,
    ) -> FloatArray:
        """Features ``f1..f3`` as the pipeline computes them at ``t``: the mean of the events
        of the last :data:`FEATURE_WINDOW_S` seconds, one event every ``interval``."""
        events = max(1, round(FEATURE_WINDOW_S / interval))
        times = np.broadcast_to(np.asarray(t, dtype=np.float64), entity.shape)
        total = np.zeros((entity.shape[0], STATE_DIMS))
        for j in range(events):
            total += self.observe(entity, times - j * interval, rng)
        mean: FloatArray = total / events
        return mean

    @staticmethod
    def score(x: FloatArray, state: FloatArray, noise: FloatArray) -> FloatArray:
        """The latent score ``w_x·x + w_s·s + b + ε``; the label is ``score > 0``."""
        result: FloatArray = x @ np.array(W_X) + state @ np.array(W_S) + BIAS + noise
        return result

    def labels(
        self, entity: IntArray, x: FloatArray, t: FloatArray | float, noise: FloatArray
    ) -> IntArray:
        """True labels (0/1) of requests ``(entity, x)`` sent at ``t`` with label noise."""
        positive = self.score(x, self.state(entity, t), noise) > 0
        return positive.astype(np.int64)


@dataclass(frozen=True)
class DemoDataset:
    """The replayed requests: ``entity_id``, ``x1``, ``x2`` per row (no label column)."""

    entity_id: IntArray
    x1: FloatArray
    x2: FloatArray

    @property
    def rows(self) -> int:
        return int(self.entity_id.shape[0])

    @property
    def x(self) -> FloatArray:
        """``[x1, x2]`` per row, shape ``(rows, 2)``."""
        stacked: FloatArray = np.column_stack([self.x1, self.x2])
        return stacked


def make_dataset(seed: int = DEFAULT_SEED, rows: int = DEFAULT_ROWS) -> DemoDataset:
    """The demo's request rows from ``seed``: entities uniform, ``x ~ N(0, 1)`` to 4 decimals.

    The values are rounded so that the CSV holds exactly what the label service uses.
    """
    if rows < 1:
        raise ValueError(f"rows must be positive, got {rows}")
    rng = _rng(seed, _STREAM_DATASET)
    entity = rng.integers(0, N_ENTITIES, size=rows).astype(np.int64)
    x = np.round(rng.normal(0.0, 1.0, size=(rows, 2)), 4)
    # -0.0 would be written as "-0.0000"; normalise so the file reads back identically.
    x = x + 0.0
    return DemoDataset(entity_id=entity, x1=x[:, 0].copy(), x2=x[:, 1].copy())


def row_noise(seed: int = DEFAULT_SEED, rows: int = DEFAULT_ROWS) -> FloatArray:
    """The label noise ``ε_row`` of each dataset row; fixed for a seed (prefix-stable)."""
    noise: FloatArray = _rng(seed, _STREAM_ROW_NOISE).normal(0.0, NOISE_SD, size=rows)
    return noise


def write_dataset(dataset: DemoDataset, path: str | Path) -> Path:
    """Write the dataset as CSV (``entity_id,x1,x2``, ``\\n`` line ends); returns the path."""
    p = Path(path)
    with p.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["entity_id", "x1", "x2"])
        for e, a, b in zip(
            dataset.entity_id.tolist(), dataset.x1.tolist(), dataset.x2.tolist(), strict=True
        ):
            writer.writerow([e, f"{a:.4f}", f"{b:.4f}"])
    return p


@dataclass(frozen=True)
class LabelRequest:
    """One label question: which dataset row (and key) was sent, and when (unix seconds)."""

    row: int | None
    key: str | None
    time: float | None


class LabelOracle:
    """The ground truth for the label service: the true label of a row at a send time."""

    def __init__(self, seed: int = DEFAULT_SEED, rows: int = DEFAULT_ROWS) -> None:
        self.world = World.from_seed(seed)
        self.dataset = make_dataset(seed, rows)
        self._noise = row_noise(seed, rows)
        self._x = self.dataset.x

    def labels(self, requests: Sequence[LabelRequest]) -> list[int | None]:
        """Labels in request order; None for an unknown row, a key that is not the row's
        entity, or a missing or non-finite time."""
        valid = [i for i, r in enumerate(requests) if self._valid(r)]
        out: list[int | None] = [None] * len(requests)
        if not valid:
            return out
        rows = np.array([requests[i].row for i in valid], dtype=np.int64)
        times = np.array([requests[i].time for i in valid], dtype=np.float64)
        labels = self.world.labels(
            self.dataset.entity_id[rows], self._x[rows], times, self._noise[rows]
        )
        for i, label in zip(valid, labels.tolist(), strict=True):
            out[i] = int(label)
        return out

    def _valid(self, request: LabelRequest) -> bool:
        row, key, t = request.row, request.key, request.time
        if row is None or not 0 <= row < self.dataset.rows:
            return False
        if t is None or not math.isfinite(t):
            return False
        if key is None:
            return True
        try:
            entity = float(key)
        except ValueError:
            return False
        return entity == float(self.dataset.entity_id[row])
