"""The demo's model files: a logistic regression as JSON, loaded and evaluated in pure Python.

A model file (``primary.json``, ``fallback.json``) is ``{"name", "version", "features",
"weights", "bias", "defaults"}``: the probability of class 1 is ``sigmoid(weights·x + bias)``
over the named features in order, and ``defaults`` holds the training means of the store's
features (what a gateway uses when it has no features). Serving needs no numpy: a model has at
most a handful of weights, and replicas and the gateway should start fast.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from mlchaos.errors import ConfigError

__all__ = ["LinearModel", "ModelFileError"]


class ModelFileError(ConfigError):
    """A model file that is missing or not a valid logistic model; the message says why."""


@dataclass(frozen=True)
class LinearModel:
    """A logistic regression over named features; ``predict`` gives ``(label, probability)``."""

    name: str
    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    defaults: Mapping[str, float] = field(default_factory=dict)
    version: str = "1"

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))
        if len(self.features) != len(self.weights):
            raise ModelFileError(
                f"model {self.name!r}: {len(self.features)} features but "
                f"{len(self.weights)} weights"
            )

    def probability(self, values: Sequence[float]) -> float:
        """P(label = 1) for one row of feature values, in the order of :attr:`features`."""
        if len(values) != len(self.weights):
            raise ValueError(
                f"model {self.name!r} takes {len(self.weights)} values, got {len(values)}"
            )
        z = self.bias + math.fsum(w * v for w, v in zip(self.weights, values, strict=True))
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def predict(self, values: Sequence[float]) -> tuple[int, float]:
        """``(label, probability)`` for one row: label 1 when the probability is ≥ 0.5."""
        p = self.probability(values)
        return int(p >= 0.5), p

    def to_json(self) -> dict[str, object]:
        """The model file's document."""
        return {
            "name": self.name,
            "version": self.version,
            "features": list(self.features),
            "weights": list(self.weights),
            "bias": self.bias,
            "defaults": dict(self.defaults),
        }

    def save(self, path: Path) -> Path:
        """Write the model file (pretty JSON); returns the path."""
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> LinearModel:
        """Read a model file; :class:`ModelFileError` names the file and the problem."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ModelFileError(f"cannot read model file {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise ModelFileError(f"model file {path} is not valid JSON: {exc}") from None
        try:
            return cls._from_json(doc)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"model file {path} is not a logistic model: {exc}") from None

    @classmethod
    def _from_json(cls, doc: object) -> LinearModel:
        if not isinstance(doc, dict):
            raise TypeError("the document must be an object")
        features, weights, defaults = doc["features"], doc["weights"], doc.get("defaults", {})
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise TypeError("'features' must be a list of names")
        if not isinstance(weights, list) or not all(_finite(w) for w in weights):
            raise TypeError("'weights' must be a list of finite numbers")
        if not _finite(doc["bias"]):
            raise TypeError("'bias' must be a finite number")
        if not isinstance(defaults, dict) or not all(_finite(v) for v in defaults.values()):
            raise TypeError("'defaults' must map names to finite numbers")
        return cls(
            name=str(doc["name"]),
            version=str(doc.get("version", "1")),
            features=tuple(features),
            weights=tuple(float(w) for w in weights),
            bias=float(doc["bias"]),
            defaults={str(k): float(v) for k, v in defaults.items()},
        )


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
