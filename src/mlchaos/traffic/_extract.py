"""Reading a prediction or the answering model out of the values that paths found in an answer.

The paths themselves are :mod:`mlchaos.jsonpath`; a value that is not there is ``None``, and the
prediction is then NaN.
"""

from __future__ import annotations

import math
from typing import Any

from mlchaos.observations import class_code

__all__ = ["to_class", "to_degradation", "to_model", "to_prediction"]


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
