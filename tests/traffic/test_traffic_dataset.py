"""Loading datasets for replay, and the clear errors a user gets for a file that will not do."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyarrow import parquet

from mlchaos.errors import ConfigError
from mlchaos.spec import TrafficConfig
from mlchaos.traffic import input_columns, load_dataset


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def config(**overrides: Any) -> TrafficConfig:
    fields: dict[str, Any] = {
        "target": "http://127.0.0.1:1",
        "dataset": "data.csv",
        "rate": "10/s",
        "duration": "1s",
        "request": {"protocol": "v2", "model": "toy"},
    }
    return TrafficConfig.model_validate(fields | overrides)


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "data.csv",
        "entity_id,x0,x1,flag,name,label\n7,0.5,1,true,a,1\n8,-1.5,2,false,b,0\n9,,3,true,c,\n",
    )


def test_a_csv_file_loads_column_by_column_with_numeric_columns_known(csv_file: Path) -> None:
    ds = load_dataset(csv_file)
    assert ds.rows == 3
    assert ds.columns == ["entity_id", "x0", "x1", "flag", "name", "label"]
    assert ds.column("x0") == [0.5, -1.5, None]
    assert ds.numeric == {"entity_id", "x0", "x1", "flag", "label"}
    labels = ds.floats("label")
    assert labels[:2] == [1.0, 0.0]
    assert math.isnan(labels[2])


def test_a_parquet_file_loads_like_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    table = pa.table({"x0": [0.5, 1.5], "key": ["u1", "u2"], "label": [1, 0]})
    parquet.write_table(table, path)
    ds = load_dataset(path, config(dataset=str(path), label="label", key="key"))
    assert ds.rows == 2
    assert ds.column("key") == ["u1", "u2"]
    assert ds.numeric == {"x0", "label"}


def test_by_default_every_column_but_label_and_key_is_an_input(csv_file: Path) -> None:
    ds = load_dataset(csv_file)
    cfg = config(label="label", key="entity_id")
    assert input_columns(ds, cfg) == ["x0", "x1", "flag", "name"]
    explicit = config(request={"protocol": "v2", "model": "toy", "inputs": ["x1"]})
    assert input_columns(ds, explicit) == ["x1"]


def test_a_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.csv: file not found"):
        load_dataset(tmp_path / "nope.csv")


def test_an_unknown_format_is_a_config_error_listing_the_known_ones(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "data.xlsx", "x\n1\n")
    with pytest.raises(ConfigError, match=r"unknown format \.xlsx; use \.csv.*\.parquet"):
        load_dataset(path)


def test_an_empty_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the file is empty"):
        load_dataset(write_csv(tmp_path / "data.csv", ""))


def test_a_file_with_a_header_and_no_rows_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no rows \(columns: x0, label\)"):
        load_dataset(write_csv(tmp_path / "data.csv", "x0,label\n"))


def test_a_file_that_is_not_parquet_is_a_config_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "data.parquet", "x0,label\n1,0\n")
    with pytest.raises(ConfigError, match="not a readable Parquet file"):
        load_dataset(path)


def test_a_ragged_csv_is_a_config_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "data.csv", "x0,label\n1,0\n1,2,3\n")
    with pytest.raises(ConfigError, match="not a readable CSV file"):
        load_dataset(path)


def test_missing_configured_columns_are_all_named_with_the_columns_that_exist(
    csv_file: Path,
) -> None:
    cfg = config(
        request={"protocol": "v2", "model": "toy", "inputs": ["x1", "x9"]},
        label="y",
        key="user",
    )
    with pytest.raises(ConfigError) as info:
        load_dataset(csv_file, cfg)
    message = str(info.value)
    assert "3 problems" in message
    assert "its columns: entity_id, x0, x1, flag, name, label" in message
    assert "traffic.request.inputs: no column 'x9'" in message
    assert "traffic.label: no column 'y'" in message
    assert "traffic.key: no column 'user'" in message


def test_a_non_numeric_input_column_is_a_config_error(csv_file: Path) -> None:
    cfg = config(request={"protocol": "v2", "model": "toy", "inputs": ["x1", "name"]})
    with pytest.raises(ConfigError, match="column 'name' is not numeric"):
        load_dataset(csv_file, cfg)


def test_default_inputs_that_are_not_numeric_say_how_to_choose_inputs(csv_file: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"column 'name' is not numeric.*traffic\.request\.inputs"
    ):
        load_dataset(csv_file, config(label="label", key="entity_id"))


def test_an_input_column_with_empty_values_is_a_config_error(csv_file: Path) -> None:
    cfg = config(request={"protocol": "v2", "model": "toy", "inputs": ["x0"]})
    with pytest.raises(ConfigError, match="column 'x0' has 1 empty values"):
        load_dataset(csv_file, cfg)


def test_a_label_column_of_text_is_accepted(csv_file: Path) -> None:
    cfg = config(request={"protocol": "v2", "model": "toy", "inputs": ["x1"]}, label="name")
    assert "name" not in load_dataset(csv_file, cfg).numeric  # class names: compared as text


def test_template_placeholders_must_name_existing_columns(csv_file: Path) -> None:
    cfg = config(
        request={
            "protocol": "json",
            "template": {"features": ["{{x0}}", "{{ x7 }}"], "meta": {"who": "{{name}}"}},
        }
    )
    with pytest.raises(ConfigError, match=r"traffic\.request\.template: no column 'x7'"):
        load_dataset(csv_file, cfg)
