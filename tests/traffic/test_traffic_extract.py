"""Paths into JSON responses, and reading predictions and model names from what they find."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlchaos.traffic import PathPart, extract, format_path, parse_path, to_model, to_prediction

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
path_parts = st.lists(st.text() | st.integers(), max_size=6)


def all_paths(node: Any, prefix: tuple[PathPart, ...] = ()) -> Iterator[tuple[tuple, Any]]:
    yield prefix, node
    if isinstance(node, list):
        for i, child in enumerate(node):
            yield from all_paths(child, (*prefix, i))
            yield from all_paths(child, (*prefix, i - len(node)))
    elif isinstance(node, dict):
        for key, child in node.items():
            yield from all_paths(child, (*prefix, key))


@given(path_parts)
def test_format_then_parse_gives_back_the_same_path(parts: list[PathPart]) -> None:
    assert parse_path(format_path(parts)) == tuple(parts)


@given(json_values)
def test_every_node_of_a_document_is_found_by_its_formatted_path(document: Any) -> None:
    for parts, node in all_paths(document):
        assert extract(document, parse_path(format_path(parts))) == node


@given(json_values, path_parts)
def test_following_any_path_never_raises(document: Any, parts: list[PathPart]) -> None:
    extract(document, parts)


@given(json_values)
def test_any_json_value_reads_as_a_float_prediction_and_never_raises(value: Any) -> None:
    assert isinstance(to_prediction(value), float)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("outputs[0].data[0]", ("outputs", 0, "data", 0)),
        ("model_name", ("model_name",)),
        ("predictions[-1]", ("predictions", -1)),
        ('["odd.key"][2].x', ("odd.key", 2, "x")),
        ("[0].score", (0, "score")),
        ("$", ()),
        ("$.a[1]", ("a", 1)),
        (" outputs[ 0 ] ", ("outputs", 0)),
    ],
)
def test_paths_parse_into_keys_and_indices(text: str, parts: tuple[PathPart, ...]) -> None:
    assert parse_path(text) == parts


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty path"),
        ("a..b", "position 2"),
        ("a.", "position 2"),
        ("a[x]", "position 1"),
        ("a b", "position 1"),
        ('a["b"', "position 1"),
    ],
)
def test_malformed_paths_are_rejected_saying_where(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_path(text)


def test_a_path_that_is_not_in_the_document_gives_none() -> None:
    doc = {"outputs": [{"data": [1]}], "model_name": "toy"}
    assert extract(doc, parse_path("outputs[1].data[0]")) is None
    assert extract(doc, parse_path("outputs[0].missing")) is None
    assert extract(doc, parse_path("model_name[0]")) is None
    assert extract(doc, parse_path("outputs.data")) is None
    assert extract(doc, parse_path("outputs[0].data[0]")) == 1


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
