"""Reading each row's prediction and answering model out of an answer."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlchaos.spec import Extract
from mlchaos.traffic import to_model, to_prediction
from mlchaos.traffic._extract import AnswerReader, to_class

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


def reader(protocol: str, text_labels: bool = False, **extract: Any) -> AnswerReader:
    return AnswerReader(Extract.model_validate(extract), protocol, text_labels=text_labels)


PROBA = {
    "model_name": "cancer",
    "model_version": "v1",
    "outputs": [
        {"name": "predict", "shape": [3, 1], "datatype": "INT64", "data": [0, 1, 0]},
        {
            "name": "predict_proba",
            "shape": [3, 2],
            "datatype": "FP64",
            "data": [0.9, 0.1, 0.2, 0.8, 0.7, 0.3],
        },
    ],
}


def test_v2_answers_give_each_row_its_value_of_the_output_tensor() -> None:
    answers = reader("v2").read(PROBA, {}, 3)
    assert [a.prediction for a in answers] == [0.0, 1.0, 0.0]
    assert {a.model for a in answers} == {"cancer"}


def test_a_v2_row_of_probabilities_reads_the_value_at_index() -> None:
    answers = reader("v2", output="predict_proba", index=1).read(PROBA, {}, 3)
    assert [a.prediction for a in answers] == [0.1, 0.8, 0.3]
    # Without an index a row of two values is no prediction; a missing row neither.
    assert all(
        math.isnan(a.prediction) for a in reader("v2", output="predict_proba").read(PROBA, {}, 3)
    )
    assert math.isnan(reader("v2").read(PROBA, {}, 4)[3].prediction)


def test_nested_v2_data_is_read_row_major_like_flat_data() -> None:
    nested = {"outputs": [{"name": "p", "shape": [2, 2], "data": [[0.9, 0.1], [0.4, 0.6]]}]}
    assert [a.prediction for a in reader("v2", index=1).read(nested, {}, 2)] == [0.1, 0.6]


def test_v1_answers_read_predictions_by_row_and_paths_take_the_row_for_hash() -> None:
    answer = {"predictions": [[0.9, 0.1], [0.2, 0.8]]}
    assert [
        a.prediction for a in reader("v1", prediction="predictions[#][1]").read(answer, {}, 2)
    ] == [0.1, 0.8]
    labels = reader("v1", model=None).read({"predictions": [1, 0]}, {}, 2)
    assert [a.prediction for a in labels] == [1.0, 0.0]
    assert labels[0].model is None


def test_the_model_may_come_from_a_header_and_carry_its_version() -> None:
    assert reader("v2", model_version="model_version").read(PROBA, {}, 1)[0].model == "cancer:v1"
    by_header = reader("v1", model_header="X-Model").read(
        {"predictions": [1]}, {"x-model": "fallback"}, 1
    )
    assert by_header[0].model == "fallback"


def test_text_labels_compare_v2_bytes_outputs_as_class_names() -> None:
    answer = {
        "outputs": [{"name": "label", "shape": [2], "datatype": "BYTES", "data": ["cat", "dog"]}]
    }
    got = [a.prediction for a in reader("v2", text_labels=True).read(answer, {}, 2)]
    assert got == [to_class("cat"), to_class("dog")]


@pytest.mark.parametrize("path", ["outputs[*].data", "a[?]", "a[#].b[#]"])
def test_extract_paths_name_one_value_per_row(path: str) -> None:
    with pytest.raises(ValueError, match="path"):
        Extract(prediction=path)
