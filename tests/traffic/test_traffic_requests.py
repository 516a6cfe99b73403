"""Request bodies built from dataset rows: Open Inference Protocol v2 and plain JSON templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlchaos.spec import TrafficConfig
from mlchaos.traffic import Dataset, RequestBuilder, fill_template, load_dataset


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    path = tmp_path / "data.csv"
    path.write_text("user,x0,x1,label,city\nu1,0.5,2,1,Oslo\nu2,-1.25,3,0,Rome\n")
    return load_dataset(path)


def builder(dataset: Dataset, request: dict[str, Any], **extra: Any) -> RequestBuilder:
    config = TrafficConfig.model_validate(
        {
            "target": "http://127.0.0.1:9000/",
            "dataset": "data.csv",
            "rate": "10/s",
            "duration": "1s",
            "request": request,
        }
        | extra
    )
    return RequestBuilder.for_config(config, dataset)


def test_v2_requests_post_the_row_as_one_fp32_tensor_with_the_request_id(
    dataset: Dataset,
) -> None:
    b = builder(dataset, {"protocol": "v2", "model": "toy", "inputs": ["x0", "x1"]}, label="label")
    assert (b.method, b.url) == ("POST", "http://127.0.0.1:9000/v2/models/toy/infer")
    assert b.body(1, "17") == {
        "id": "17",
        "inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP32", "data": [-1.25, 3.0]}],
    }


def test_v2_default_inputs_leave_out_the_label_and_key_columns(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("user,x0,x1,label\n7,0.5,2,1\n")
    b = builder(load_dataset(path), {"protocol": "v2", "model": "toy"}, label="label", key="user")
    assert b.body(0, "0")["inputs"][0]["data"] == [0.5, 2.0]


def test_v2_requests_to_a_model_version_use_the_versioned_path(dataset: Dataset) -> None:
    b = builder(dataset, {"protocol": "v2", "model": "m", "version": "3", "inputs": ["x0"]})
    assert b.url == "http://127.0.0.1:9000/v2/models/m/versions/3/infer"


def test_json_templates_take_row_values_with_their_types_at_any_depth(dataset: Dataset) -> None:
    template = {
        "features": ["{{x0}}", "{{ x1 }}"],
        "context": {"city": "{{city}}", "literal": "x0", "nested": [{"user": "{{user}}"}]},
        "text": "id {{user}}",
        "n": 3,
    }
    b = builder(
        dataset, {"protocol": "json", "path": "score", "method": "PUT", "template": template}
    )
    assert (b.method, b.url) == ("PUT", "http://127.0.0.1:9000/score")
    assert b.body(0, "0") == {
        "features": [0.5, 2],
        "context": {"city": "Oslo", "literal": "x0", "nested": [{"user": "u1"}]},
        "text": "id {{user}}",
        "n": 3,
    }


def test_filling_a_template_leaves_the_template_unchanged(dataset: Dataset) -> None:
    template = {"a": ["{{x0}}"]}
    fill_template(template, dataset.data, 1)
    assert template == {"a": ["{{x0}}"]}
