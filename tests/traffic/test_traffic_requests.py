"""Request bodies built from dataset rows: Open Inference Protocol v2, KServe v1 and plain JSON
templates."""

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
    assert b.body([1], "17") == {
        "id": "17",
        "inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP32", "data": [-1.25, 3.0]}],
    }


def test_v2_default_inputs_leave_out_the_label_and_key_columns(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("user,x0,x1,label\n7,0.5,2,1\n")
    b = builder(load_dataset(path), {"protocol": "v2", "model": "toy"}, label="label", key="user")
    assert b.body([0], "0")["inputs"][0]["data"] == [0.5, 2.0]


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
    assert b.body([0], "0") == {
        "features": [0.5, 2],
        "context": {"city": "Oslo", "literal": "x0", "nested": [{"user": "u1"}]},
        "text": "id {{user}}",
        "n": 3,
    }


def test_filling_a_template_leaves_the_template_unchanged(dataset: Dataset) -> None:
    template = {"a": ["{{x0}}"]}
    fill_template(template, dataset.data, 1)
    assert template == {"a": ["{{x0}}"]}


def test_v2_batches_send_named_tensors_of_their_datatypes_row_major(dataset: Dataset) -> None:
    request = {
        "protocol": "v2",
        "model": "toy",
        "inputs": [
            {"name": "xs", "columns": ["x0", "x1"], "datatype": "FP64"},
            {"name": "x1", "datatype": "INT64", "shape": [], "parameters": {"content_type": "np"}},
            {"name": "city", "datatype": "BYTES", "shape": [1]},
        ],
        "parameters": {"content_type": "pd"},
        "outputs": ["predict_proba"],
        "batch": 2,
    }
    b = builder(dataset, request, label="label")
    assert b.batch == 2
    assert b.body([1, 0], "9") == {
        "id": "9",
        "inputs": [
            {"name": "xs", "shape": [2, 2], "datatype": "FP64", "data": [-1.25, 3.0, 0.5, 2.0]},
            {
                "name": "x1",
                "shape": [2],
                "datatype": "INT64",
                "data": [3, 2],
                "parameters": {"content_type": "np"},
            },
            {"name": "city", "shape": [2, 1], "datatype": "BYTES", "data": ["Rome", "Oslo"]},
        ],
        "parameters": {"content_type": "pd"},
        "outputs": [{"name": "predict_proba"}],
    }


def test_v2_grpc_requests_go_to_the_grpc_target(dataset: Dataset) -> None:
    b = RequestBuilder.for_config(
        TrafficConfig.model_validate(
            {
                "target": "grpc://127.0.0.1:9001",
                "dataset": "data.csv",
                "rate": "10/s",
                "duration": "1s",
                "request": {"protocol": "v2-grpc", "model": "toy", "inputs": ["x0"]},
            }
        ),
        dataset,
    )
    assert b.grpc
    assert b.body([0], "1")["inputs"][0]["data"] == [0.5]


def test_v1_requests_send_instances_as_lists_or_objects(dataset: Dataset) -> None:
    b = builder(dataset, {"protocol": "v1", "model": "toy", "batch": 2}, label="label")
    assert b.url == "http://127.0.0.1:9000/v1/models/toy:predict"
    assert b.body([0, 1], "0") == {"instances": [["u1", 0.5, 2, "Oslo"], ["u2", -1.25, 3, "Rome"]]}
    objects = builder(
        dataset, {"protocol": "v1", "model": "toy", "inputs": ["x0"], "instance": "object"}
    )
    assert objects.body([1], "0") == {"instances": [{"x0": -1.25}]}


def test_a_json_template_takes_the_whole_row_as_a_list_or_an_object(dataset: Dataset) -> None:
    template = {"row": "{{*}}", "named": "{{**}}", "user": "{{user}}"}
    b = builder(dataset, {"protocol": "json", "template": template}, label="label", key="user")
    assert b.body([0], "0") == {
        "row": [0.5, 2, "Oslo"],
        "named": {"x0": 0.5, "x1": 2, "city": "Oslo"},
        "user": "u1",
    }


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"request": {"protocol": "v2", "model": "m", "batch": 4}, "key": "user"}, "one arm"),
        ({"request": {"protocol": "v2-grpc", "model": "m"}}, "grpc://host:port"),
        (
            {"target": "grpc://127.0.0.1:1", "request": {"protocol": "v2", "model": "m"}},
            "an http:// target",
        ),
        (
            {"request": {"protocol": "v2", "model": "m", "inputs": [{"name": "a", "shape": [2]}]}},
            "holds 2 values per row",
        ),
        ({"request": {"protocol": "v1", "model": "m"}, "extract": {"index": 1}}, "v2 output"),
        ({"request": {"protocol": "v2", "model": "m", "batch": 0}}, "batch"),
    ],
)
def test_request_settings_that_cannot_work_are_refused(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        TrafficConfig.model_validate(
            {"target": "http://127.0.0.1:9000", "dataset": "d.csv", "rate": "1/s", "duration": "1s"}
            | settings
        )
