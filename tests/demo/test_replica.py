"""A primary-model replica as its own process: Open Inference Protocol v2 over the model file."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from mlchaos.demo._logistic import LinearModel
from mlchaos.demo._models import train_models
from mlchaos.demo._services import ServiceGroup, ServiceSpec, ServiceStartError


def demo_spec(name: str, *args: str) -> ServiceSpec:
    argv = [sys.executable, "-m", "mlchaos.demo", *args, "--port", "0"]
    return ServiceSpec(name, argv, ready_timeout=20.0)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models")
    train_models(7, out)
    return out


@pytest_asyncio.fixture
async def replica(model_dir: Path) -> AsyncIterator[str]:
    async with ServiceGroup() as group:
        args = ("replica", "--model-dir", str(model_dir), "--name", "replica-x")
        service = await group.start(demo_spec("replica-x", *args))
        yield f"http://127.0.0.1:{service.port}"
        assert await group.stop("replica-x") == 0
        assert not any("Traceback" in line for line in service.log_tail())


def infer_body(data: list[float], shape: list[int] | None = None) -> dict[str, object]:
    tensor = {"name": "features", "shape": shape or [1, len(data)], "datatype": "FP32"}
    return {"id": "req-1", "inputs": [{**tensor, "data": data}]}


@pytest.mark.asyncio
async def test_health_readiness_and_metadata(replica: str) -> None:
    async with aiohttp.ClientSession() as http:
        for path, expected in [
            ("/v2/health/live", {"live": True}),
            ("/v2/health/ready", {"ready": True}),
            ("/v2/models/primary/ready", {"name": "primary", "ready": True}),
        ]:
            async with http.get(replica + path) as r:
                assert r.status == 200
                assert await r.json() == expected
        async with http.get(f"{replica}/v2/models/primary") as r:
            meta = await r.json()
    assert meta["name"] == "primary"
    assert meta["inputs"][0]["shape"] == [1, 5]
    assert [o["name"] for o in meta["outputs"]] == ["label", "probability"]


@pytest.mark.asyncio
async def test_infer_answers_the_model_files_label_and_probability_and_its_name(
    replica: str, model_dir: Path
) -> None:
    model = LinearModel.load(model_dir / "primary.json")
    rows = [[0.5, -1.0, 1.2, -0.3, 0.8], [-2.0, 1.5, -1.0, 1.0, -1.0]]
    async with aiohttp.ClientSession() as http:
        for row in rows:
            async with http.post(f"{replica}/v2/models/primary/infer", json=infer_body(row)) as r:
                assert r.status == 200
                doc = await r.json()
            label, probability = model.predict(row)
            assert doc["model_name"] == "primary"
            assert doc["model_version"] == "1"
            assert doc["id"] == "req-1"
            assert doc["parameters"] == {"replica": "replica-x"}
            out = {o["name"]: o for o in doc["outputs"]}
            assert out["label"] == {
                "name": "label",
                "shape": [1, 1],
                "datatype": "INT64",
                "data": [label],
            }
            assert out["probability"]["datatype"] == "FP32"
            assert out["probability"]["data"][0] == pytest.approx(probability)


@pytest.mark.asyncio
async def test_bad_input_is_400_and_an_unknown_model_404(replica: str) -> None:
    bad = [
        infer_body([1.0, 2.0, 3.0]),
        infer_body([1.0] * 5, shape=[2, 5]),
        {"inputs": []},
        {"inputs": [{"name": "f", "shape": [1, 5], "datatype": "BYTES", "data": [1] * 5}]},
        {"inputs": [{"name": "f", "shape": [1, 5], "datatype": "FP32", "data": ["a"] * 5}]},
    ]
    async with aiohttp.ClientSession() as http:
        for body in bad:
            async with http.post(f"{replica}/v2/models/primary/infer", json=body) as r:
                assert r.status == 400, body
                assert "error" in await r.json()
        async with http.post(f"{replica}/v2/models/primary/infer", data=b"nope") as r:
            assert r.status == 400
        async with http.post(f"{replica}/v2/models/churn/infer", json=infer_body([1.0] * 5)) as r:
            assert r.status == 404
            assert "error" in await r.json()
        async with http.get(f"{replica}/v2/models/primary/versions/2") as r:
            assert r.status == 404


@pytest.mark.asyncio
async def test_a_missing_model_file_stops_the_replica_with_one_line(tmp_path: Path) -> None:
    async with ServiceGroup() as group:
        with pytest.raises(ServiceStartError) as caught:
            await group.start(
                demo_spec("r", "replica", "--model-dir", str(tmp_path), "--name", "r")
            )
    assert caught.value.returncode == 2
    assert len(caught.value.log_tail) == 1
    assert "cannot read model file" in caught.value.log_tail[0]


@pytest.mark.asyncio
async def test_a_gpu_workspace_on_a_host_without_a_gpu_stops_the_replica_with_one_line(
    model_dir: Path,
) -> None:
    from mlchaos._cuda import Cuda, CudaError

    try:
        Cuda()
    except CudaError:
        pass
    else:
        pytest.skip("this host has a GPU: the workspace is made")
    args = ("replica", "--model-dir", str(model_dir), "--name", "r", "--workspace-device", "cuda")
    async with ServiceGroup() as group:
        with pytest.raises(ServiceStartError) as caught:
            await group.start(demo_spec("r", *args))
    assert caught.value.returncode == 2
    (line,) = caught.value.log_tail
    assert line == (
        "mlchaos.demo r: error: a GPU workspace needs a GPU: no CUDA driver "
        "(libcuda.so.1 not found)"
    )


@pytest.mark.asyncio
async def test_a_gpu_replica_answers_503_while_its_gpu_has_no_room(
    model_dir: Path, tmp_path: Path
) -> None:
    """On a GPU: the workspace fails to allocate while the agent holds the memory, and the
    replica serves again once it is given back."""
    from mlchaos.agent import AgentClient, AgentServer
    from mlchaos.agent._gpu import unsupported
    from mlchaos.process import ProcessSelector
    from mlchaos.units import Duration

    why = unsupported()
    if why is not None:
        pytest.skip(f"needs a GPU: {why}")
    args = ("replica", "--model-dir", str(model_dir), "--name", "r", "--workspace-device", "cuda")
    async with ServiceGroup() as group, aiohttp.ClientSession() as session:
        service = await group.start(demo_spec("r", *args, "--workspace-mib", "256"))
        url = f"http://127.0.0.1:{service.port}/v2/models/primary/infer"
        body = infer_body([0.1, 0.2, 0.3, 0.4, 0.5])
        pidfile = tmp_path / "r.pid"
        pidfile.write_text(str(service.pid))
        async with (
            AgentServer(token_file=str(tmp_path / "agent.token")) as agent,
            AgentClient(agent.url, agent.token) as client,
        ):
            async with session.post(url, json=body) as r:
                assert r.status == 200
            selector = ProcessSelector(pidfile=str(pidfile))
            await client.take_gpu_memory("g", selector, Duration(30), leave_free=64 * 2**20)
            async with session.post(url, json=body) as r:
                assert r.status == 503
                assert (await r.json())["error"].startswith("out of GPU memory")
            await client.remove("g")
            async with session.post(url, json=body) as r:
                assert r.status == 200
