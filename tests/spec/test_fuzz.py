"""Hostile input: whatever a file holds, loading it raises SpecError (exit 2) or succeeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlchaos.errors import ConfigError, SpecError
from mlchaos.spec import Experiment, load_experiment, parse_text, validate_data

KEYS = st.sampled_from(
    [
        "title",
        "traffic",
        "faults",
        "hypothesis",
        "type",
        "target",
        "rate",
        "duration",
        "max",
        "metric",
        "arm",
        "start",
        "proxies",
        "serve",
        "listen",
        "upstream",
        "probability",
        "x",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.sampled_from(["5%", "250ms", "50/s", "-1s", "abort", "http://127.0.0.1:1", "200%"]),
    st.text(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=150)
@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_any_structure_gives_a_spec_error_or_a_model(data: dict[str, Any]) -> None:
    try:
        validate_data(data, Experiment, source="fuzz.yaml")
    except SpecError as exc:
        assert exc.issues
        assert all(issue.message for issue in exc.issues)


@settings(max_examples=100)
@given(st.text(max_size=200))
def test_any_text_parses_or_gives_a_spec_error(text: str) -> None:
    try:
        parse_text(text, "fuzz.yaml")
    except SpecError as exc:
        assert exc.issues


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=100))
def test_binary_files_are_refused_cleanly(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "blob.yaml"
    path.write_bytes(blob)
    try:
        load_experiment(path)
    except SpecError as exc:
        assert exc.issues
    except ConfigError as exc:  # bytes that are not UTF-8
        assert "not a text file" in str(exc)
