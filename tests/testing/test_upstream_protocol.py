"""The bundled test upstream speaks the Open Inference Protocol v2 for the toy model."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from mlchaos.testing import TOY_MODEL, Upstream, start_upstream, toy_predict, toy_score

POSITIVE = [2.0, 0.0, 0.0, 0.0]  # score 2.1
NEGATIVE = [-2.0, 0.0, 0.0, 0.0]  # score -1.9


def v2_body(data: list[Any], shape: list[int] | None = None, **extra: Any) -> dict[str, Any]:
    tensor = {"name": "input-0", "shape": shape or [1, 4], "datatype": "FP32", "data": data}
    return {"inputs": [tensor], **extra}


async def get(client: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with client.get(url) as resp:
        return resp.status, await resp.json()


async def post(client: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else None
    async with client.post(url, data=data, json=None if data else body) as resp:
        return resp.status, await resp.json()


def test_the_toy_model_predicts_one_when_its_linear_score_is_positive() -> None:
    assert toy_score(POSITIVE) > 0
    assert toy_predict(POSITIVE) == 1
    assert toy_predict(NEGATIVE) == 0
    with pytest.raises(ValueError, match="4 features"):
        toy_score([1.0])


@pytest.mark.asyncio
async def test_health_and_readiness_endpoints_answer_as_the_protocol_says(
    toy_upstream: Upstream, client: aiohttp.ClientSession
) -> None:
    assert await get(client, f"{toy_upstream.url}/v2/health/live") == (200, {"live": True})
    assert await get(client, f"{toy_upstream.url}/v2/health/ready") == (200, {"ready": True})
    ready = await get(client, f"{toy_upstream.url}/v2/models/toy/ready")
    assert ready == (200, {"name": "toy", "ready": True})
    ready_v1 = await get(client, f"{toy_upstream.url}/v2/models/toy/versions/1/ready")
    assert ready_v1 == (200, {"name": "toy", "ready": True})


@pytest.mark.asyncio
async def test_model_metadata_describes_one_fp32_input_of_four_features(
    toy_upstream: Upstream, client: aiohttp.ClientSession
) -> None:
    status, meta = await get(client, f"{toy_upstream.url}/v2/models/toy")
    assert status == 200
    assert meta["name"] == TOY_MODEL
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"][0]["datatype"] == "INT64"


@pytest.mark.asyncio
async def test_infer_answers_the_toy_prediction_with_the_request_id(
    toy_upstream: Upstream, client: aiohttp.ClientSession
) -> None:
    status, body = await post(
        client, f"{toy_upstream.url}/v2/models/toy/infer", v2_body(POSITIVE, id="r1")
    )
    assert status == 200
    assert body == {
        "model_name": "toy",
        "model_version": "1",
        "id": "r1",
        "outputs": [{"name": "label", "shape": [1], "datatype": "INT64", "data": [1]}],
    }
    _, body = await post(
        client, f"{toy_upstream.url}/v2/models/toy/versions/1/infer", v2_body(NEGATIVE)
    )
    assert body["outputs"][0]["data"] == [0]


@pytest.mark.asyncio
async def test_infer_answers_a_batch_row_by_row(
    toy_upstream: Upstream, client: aiohttp.ClientSession
) -> None:
    status, body = await post(
        client, f"{toy_upstream.url}/v2/models/toy/infer", v2_body(POSITIVE + NEGATIVE, [2, 4])
    )
    assert status == 200
    assert body["outputs"][0]["shape"] == [2]
    assert body["outputs"][0]["data"] == [1, 0]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        ([1, 2], "must be a JSON object"),
        ({"inputs": []}, "non-empty list"),
        ({"inputs": ["x"]}, "must be an object"),
        (v2_body([1.0, 2.0, 3.0], [1, 3]), r"expects shape \[n, 4\]"),
        (v2_body([1.0, 2.0, 3.0], [1, 4]), "needs 4 values, got 3"),
        (v2_body([1.0, 2.0, 3.0, 4.0], [1, 2, 2]), r"expects shape \[n, 4\]"),
        (v2_body(["a", 1.0, 2.0, 3.0]), r"data\[0\] must be a finite number"),
        (v2_body([1.0, 2.0, 3.0, 4.0], ["1", 4]), "'shape' must be a list"),
        ({"inputs": [{"shape": [1, 4], "datatype": "BYTES", "data": ["a"] * 4}]}, "BYTES"),
    ],
)
async def test_malformed_or_wrong_shape_input_is_rejected_with_400_and_an_error(
    toy_upstream: Upstream, client: aiohttp.ClientSession, body: Any, message: str
) -> None:
    status, answer = await post(client, f"{toy_upstream.url}/v2/models/toy/infer", body)
    assert status == 400
    assert set(answer) == {"error"}
    assert re.search(message, answer["error"]), answer["error"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/other/infer",
        "/v2/models/toy/versions/2/infer",
        "/v1/models/other:predict",
    ],
)
async def test_an_unknown_model_or_version_is_404_with_an_error(
    toy_upstream: Upstream, client: aiohttp.ClientSession, path: str
) -> None:
    status, answer = await post(client, f"{toy_upstream.url}{path}", v2_body(POSITIVE))
    assert status == 404
    assert "not found" in answer["error"] or "no version" in answer["error"]


@pytest.mark.asyncio
async def test_unknown_model_metadata_and_unknown_routes_are_404(
    toy_upstream: Upstream, client: aiohttp.ClientSession
) -> None:
    status, answer = await get(client, f"{toy_upstream.url}/v2/models/other")
    assert (status, answer) == (404, {"error": "model 'other' not found; this server has 'toy'"})
    status, answer = await get(client, f"{toy_upstream.url}/nowhere")
    assert status == 404
    assert "error" in answer


@pytest.mark.asyncio
async def test_plain_json_predict_takes_a_list_or_named_features(
    toy_upstream: Upstream, client: aiohttp.ClientSession
) -> None:
    status, body = await post(client, f"{toy_upstream.url}/predict", {"features": POSITIVE})
    assert status == 200
    assert body["model"] == "toy"
    assert body["prediction"] == 1
    assert body["score"] == pytest.approx(toy_score(POSITIVE))
    named = dict(zip(["x0", "x1", "x2", "x3"], NEGATIVE, strict=True))
    _, body = await post(client, f"{toy_upstream.url}/predict", {"features": named})
    assert body["prediction"] == 0
    status, body = await post(client, f"{toy_upstream.url}/predict", {"features": {"x0": 1}})
    assert status == 400
    assert "x1" in body["error"]


@pytest.mark.asyncio
async def test_kserve_v1_predict_answers_each_instance(
    toy_upstream: Upstream, client: aiohttp.ClientSession
) -> None:
    body = {"instances": [POSITIVE, NEGATIVE]}
    status, answer = await post(client, f"{toy_upstream.url}/v1/models/toy:predict", body)
    assert (status, answer) == (200, {"predictions": [1, 0]})
    status, _ = await post(
        client, f"{toy_upstream.url}/v1/models/toy:predict", {"instances": [[1]]}
    )
    assert status == 400


@pytest.mark.asyncio
async def test_a_stopped_upstream_releases_its_port() -> None:
    up = await start_upstream()
    port = up.port
    assert up.url == f"http://127.0.0.1:{port}"
    await up.stop()
    again = await start_upstream(port=port)
    try:
        assert again.port == port
    finally:
        await again.stop()
