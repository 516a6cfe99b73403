"""``make_dataset``: synthetic rows for the toy model, reproducible from a seed."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mlchaos.testing import TOY_FEATURES, make_dataset, toy_predict
from mlchaos.traffic import load_dataset

EXAMPLE = Path(__file__).parents[2] / "examples" / "data" / "toy.csv"


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    a = make_dataset(tmp_path / "a.csv", rows=100, seed=4).read_bytes()
    b = make_dataset(tmp_path / "b.csv", rows=100, seed=4).read_bytes()
    c = make_dataset(tmp_path / "c.csv", rows=100, seed=5).read_bytes()
    assert a == b
    assert a != c


def test_rows_have_an_entity_id_four_numeric_features_and_a_label(tmp_path: Path) -> None:
    ds = load_dataset(make_dataset(tmp_path / "d.csv", rows=50, seed=0))
    assert ds.columns == ["entity_id", *TOY_FEATURES, "label"]
    assert ds.rows == 50
    assert set(ds.numeric) == set(ds.columns)
    assert ds.column("entity_id") == list(range(1000, 1050))
    assert set(ds.column("label")) == {0, 1}


def test_labels_agree_with_the_toy_model_on_about_nine_rows_in_ten(tmp_path: Path) -> None:
    rows = read_rows(make_dataset(tmp_path / "d.csv", rows=2000, seed=11))
    agree = sum(toy_predict([float(r[f]) for f in TOY_FEATURES]) == int(r["label"]) for r in rows)
    assert 0.87 <= agree / len(rows) <= 0.93
    positives = sum(int(r["label"]) for r in rows) / len(rows)
    assert 0.3 <= positives <= 0.7


def test_a_dataset_needs_at_least_one_row(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rows must be positive"):
        make_dataset(tmp_path / "d.csv", rows=0)


def test_the_example_dataset_is_make_dataset_with_2000_rows_and_seed_0(tmp_path: Path) -> None:
    """examples/data/toy.csv is reproducible: regenerate it with this call."""
    fresh = make_dataset(tmp_path / "toy.csv", rows=2000, seed=0)
    assert EXAMPLE.read_bytes() == fresh.read_bytes()
