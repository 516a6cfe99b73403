"""The client simulator as its own process: it calls its target at the rate it was given."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from mlchaos.demo._services import ServiceGroup, ServiceSpec, ServiceStartError
from mlchaos.demo._world import make_dataset, write_dataset


def clients_spec(*args: str) -> ServiceSpec:
    argv = [sys.executable, "-m", "mlchaos.demo", "clients", *args, "--port", "0"]
    return ServiceSpec("clients", argv, ready_timeout=20.0)


@pytest.mark.asyncio
async def test_the_simulator_calls_at_its_rate_with_dataset_rows(tmp_path: Path) -> None:
    dataset = write_dataset(make_dataset(7), tmp_path / "requests.csv")
    bodies: list[dict[str, object]] = []

    async def infer(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.json_response({"model_name": "primary"})

    app = web.Application()
    app.router.add_post("/v2/models/churn/infer", infer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    target = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with ServiceGroup() as group:
            args = ("--target", target, "--dataset", str(dataset), "--rate", "100")
            service = await group.start(clients_spec(*args))
            await asyncio.sleep(2.0)
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{service.port}/health") as r,
            ):
                health = await r.json()
            assert await group.stop("clients") == 0
    finally:
        await runner.cleanup()
    assert 150 <= len(bodies) <= 230  # 100/s for about two seconds
    assert health["answered"] >= 150 and health["errors"] == 0
    tensor = bodies[0]["inputs"][0]  # type: ignore[index]
    assert tensor["shape"] == [1, 3] and len(tensor["data"]) == 3
    assert len({json.dumps(b) for b in bodies}) > 100  # random rows, not one request repeated


@pytest.mark.asyncio
async def test_a_missing_dataset_stops_the_simulator_with_one_line(tmp_path: Path) -> None:
    async with ServiceGroup() as group:
        with pytest.raises(ServiceStartError) as caught:
            args = ("--target", "http://127.0.0.1:9", "--dataset", str(tmp_path / "none.csv"))
            await group.start(clients_spec(*args))
    assert caught.value.returncode == 3
    assert len(caught.value.log_tail) == 1
    assert "cannot read the dataset" in caught.value.log_tail[0]
