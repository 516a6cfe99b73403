"""Reading predictions and model names from the values that paths found in an answer."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlchaos.traffic import to_model, to_prediction

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_values)
def test_any_json_value_reads_as_a_float_prediction_and_never_raises(value: Any) -> None:
    assert isinstance(to_prediction(value), float)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        (0.25, 0.25),
        (True, 1.0),
        (False, 0.0),
        ([0.7], 0.7),
        ([[1]], 1.0),
        ("0.5", 0.5),
    ],
)
def test_predictions_read_as_floats(value: Any, expected: float) -> None:
    assert to_prediction(value) == expected


@pytest.mark.parametrize("value", [None, "yes", [1, 2], [], {"p": 1}, 10**400])
def test_non_numeric_predictions_read_as_nan(value: Any) -> None:
    assert math.isnan(to_prediction(value))


def test_model_names_are_text_and_anything_else_is_unknown() -> None:
    assert to_model("toy") == "toy"
    assert to_model(3) == "3"
    assert to_model(None) is None
    assert to_model(True) is None
    assert to_model({"name": "toy"}) is None
