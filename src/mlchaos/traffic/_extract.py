"""Reading each row's prediction, answering model and degradation out of an answer.

The paths themselves are :mod:`mlchaos.jsonpath`; a value that is not there is ``None``, and the
prediction is then NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlchaos.errors import ConfigError
from mlchaos.jsonpath import ROWS, PathPart, extract
from mlchaos.observations import class_code
from mlchaos.spec._traffic import Extract, TrafficConfig, row_path
from mlchaos.traffic._dataset import Dataset
from mlchaos.traffic._oip import output_rows

__all__ = [
    "NO_ANSWER",
    "Answer",
    "AnswerReader",
    "to_class",
    "to_degradation",
    "to_model",
    "to_prediction",
]


def to_class(value: Any) -> float:
    """A predicted class compared with text labels: its text (a string, bytes, or a number as
    JSON writes it) as :func:`mlchaos.observations.class_code`; NaN when there is none."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value is None or isinstance(value, bool | dict | list):
        return math.nan
    return class_code(str(value))


def to_prediction(value: Any) -> float:
    """A prediction as a float: booleans are 0/1, ``[x]`` is ``x``, numeric text is its number.

    Anything else (missing, an object, a longer list, non-numeric text) is NaN.
    """
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return math.nan
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


def to_model(value: Any) -> str | None:
    """The name of the model that answered: text as is, a number as its text, else ``None``."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def to_degradation(value: Any) -> str | None:
    """What an answer says it degraded (``cached_features,fallback_model``); ``None`` when it
    says nothing, ``""`` or ``none``."""
    degraded = to_model(value)
    return None if degraded in (None, "", "none") else degraded


@dataclass(frozen=True, slots=True)
class Answer:
    """What a successful response says about one of its rows, by the extraction settings."""

    model: str | None = None
    prediction: float = math.nan
    degradation: str | None = None
    feature_age: float = math.nan


NO_ANSWER = Answer()


class AnswerReader:
    """Reads each row's :class:`Answer` out of a JSON answer, as ``traffic.extract`` says.

    The prediction is read the protocol's own way unless a path is given: a v2 output tensor
    row, v1 ``predictions[#]``, json ``outputs[0].data[0]``; ``[#]`` in a path is the row's
    place in its batch.
    """

    @classmethod
    def for_config(cls, config: TrafficConfig, dataset: Dataset) -> AnswerReader:
        """The reader of a replay: a label column of text (class names) makes predictions
        compare as text."""
        text_labels = config.label is not None and config.label not in dataset.numeric
        return cls(config.extract, config.request.protocol, text_labels=text_labels)

    def __init__(self, extract: Extract, protocol: str, *, text_labels: bool) -> None:
        self.extract = extract
        self.tensor = extract.protocol_prediction and protocol in ("v2", "v2-grpc")
        prediction = extract.prediction
        if extract.protocol_prediction and protocol == "v1":
            prediction = "predictions[#]"
        self.prediction = _parse(None if self.tensor else prediction, "prediction")
        self.model = _parse(extract.model, "model")
        self.version = _parse(extract.model_version, "model_version")
        self.degradation = _parse(extract.degradation, "degradation")
        self.feature_age = _parse(extract.feature_age, "feature_age")
        self.header = None if extract.model_header is None else extract.model_header.lower()
        self.text_labels = text_labels
        self.to_value = to_class if text_labels else to_prediction

    @property
    def reads_body(self) -> bool:
        paths = (self.prediction, self.model, self.version, self.degradation, self.feature_age)
        return self.tensor or any(p is not None for p in paths)

    def paths(self) -> dict[str, tuple[PathPart, ...]]:
        """The configured paths by field, for checking one real answer."""
        named = {
            "prediction": self.prediction,
            "model": None if self.header is not None else self.model,
            "model_version": self.version,
            "degradation": self.degradation,
            "feature_age": self.feature_age,
        }
        return {k: v for k, v in named.items() if v is not None}

    def read(self, document: Any, headers: Mapping[str, str], rows: int) -> list[Answer]:
        model = self._model(document, headers)
        if self.tensor:
            values = output_rows(document, self.extract.output, self.extract.index, rows)
        else:
            values = [_row_value(document, self.prediction, i) for i in range(rows)]
        return [
            Answer(
                model=model,
                prediction=self.to_value(values[i]),
                degradation=to_degradation(_row_value(document, self.degradation, i)),
                feature_age=to_prediction(_row_value(document, self.feature_age, i)),
            )
            for i in range(rows)
        ]

    def _model(self, document: Any, headers: Mapping[str, str]) -> str | None:
        if self.header is not None:
            name = headers.get(self.header)
        else:
            name = to_model(_row_value(document, self.model, 0))
        version = to_model(_row_value(document, self.version, 0))
        if name is None or not version:
            return name
        return f"{name}:{version}"


def _row_value(document: Any, path: tuple[PathPart, ...] | None, row: int) -> Any:
    if path is None:
        return None
    if ROWS not in path:
        return extract(document, path)
    return extract(document, [row if p is ROWS else p for p in path])


def _parse(text: str | None, what: str) -> tuple[PathPart, ...] | None:
    if text is None:
        return None
    try:
        return row_path(text)
    except ValueError as exc:
        raise ConfigError(f"traffic.extract.{what}: {exc}") from None
