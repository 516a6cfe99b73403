"""The one JSON path dialect: parsing, formatting, following one value, locating many."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlchaos.jsonpath import WILDCARD, PathPart, extract, format_path, locate, parse_path

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
path_parts = st.lists(st.text() | st.integers() | st.just(WILDCARD), max_size=6)


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
        ("results[*].values", ("results", WILDCARD, "values")),
        ('["*"]', ("*",)),
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
        ("a[1", "position 1"),
        (".a", "position 0"),
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


def test_digit_keys_index_lists_so_dotted_and_bracketed_paths_agree() -> None:
    doc = {"inputs": [{"data": [1001, 7]}]}
    assert extract(doc, parse_path("inputs.0.data.1")) == 7
    assert extract(doc, parse_path("inputs[0].data[1]")) == 7
    assert extract({"0": "key"}, parse_path("0")) == "key"


def test_a_wildcard_names_no_single_value_but_locates_every_one() -> None:
    doc = {"results": [{"values": [1, 2]}, {"values": [3]}, {"other": 0}]}
    path = parse_path("results[*].values[*]")
    assert extract(doc, path) is None
    assert sorted(c[k] for c, k in locate(doc, path)) == [1, 2, 3]
    assert [k for _, k in locate({"a": 1, "b": 2}, parse_path("[*]"))] == ["a", "b"]
    assert list(locate(doc, ())) == []
    with pytest.raises(ValueError, match="is not allowed here"):
        parse_path("results[*]", wildcards=False)


@given(json_values, path_parts)
def test_locating_any_path_never_raises_and_finds_what_extract_finds(
    document: Any, parts: list[PathPart]
) -> None:
    found = list(locate(document, parts))
    if parts and WILDCARD not in parts:
        value = extract(document, parts)
        assert [c[k] for c, k in found] == ([] if not found else [value])


def test_rows_take_the_given_indices_of_a_list_and_every_one_without_rows() -> None:
    from mlchaos.jsonpath import ROWS, locate, parse_path

    doc = {"results": [{"values": [10, 11, 12, 13]}]}
    path = parse_path("results[0].values[#]")
    assert path[-1] is ROWS
    assert [k for _, k in locate(doc, path, rows=frozenset({3, 1, 9}))] == [1, 3]
    assert [k for _, k in locate(doc, path)] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"'\[#\]' is not allowed here"):
        parse_path("a[#]", wildcards=False)
