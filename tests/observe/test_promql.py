"""PromQL probes: what the answer's structure says, not what its text contains.

A real Prometheus cannot be made to time out or answer 503 on demand, so a stand-in HTTP server
answers on its API path the way Prometheus (or a proxy in front of it) does in each case; the
tests with a real Prometheus are in tests/e2e/test_prometheus_alerts.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from mlchaos.observe import promql
from mlchaos.spec import PromqlProbe

Answer = Callable[[web.Request], Any]


@pytest_asyncio.fixture
async def prometheus() -> AsyncIterator[Callable[[Answer], Any]]:
    """Start a stand-in answering ``/api/v1/query`` with the given handler; yields its URL."""
    runners: list[web.AppRunner] = []

    async def start(answer: Answer) -> str:
        app = web.Application()
        app.router.add_get("/api/v1/query", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for r in runners:
        await r.cleanup()


def vector(*values: float) -> dict[str, Any]:
    result = [{"metric": {"job": f"j{i}"}, "value": [0, str(v)]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def probe(url: str, **extra: Any) -> PromqlProbe:
    fields = {"type": "promql", "name": "q", "url": url, "query": "up", "op": "==", "value": 2}
    return PromqlProbe.model_validate(fields | extra)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("answer", "ok", "no_data", "says"),
    [
        (lambda r: web.json_response(vector(1, 1)), True, False, "up == 1: 1, 1"),
        (lambda r: web.json_response(vector(2, 1)), False, False, "job=j1 = 1, not == 2"),
        (lambda r: web.json_response(vector()), False, True, "no data"),
        (lambda r: web.Response(status=503, text="overloaded"), False, True, "status 503"),
        (
            lambda r: web.json_response({"status": "error", "error": "boom"}, status=500),
            False,
            True,
            "status 500: boom",
        ),
    ],
)
async def test_an_answer_is_judged_by_its_structure(
    prometheus: Callable[[Answer], Any], answer: Answer, ok: bool, no_data: bool, says: str
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        result: web.StreamResponse = answer(request)
        return result

    url = await prometheus(handler)
    p = probe(url, value=1) if ok else probe(url)
    async with aiohttp.ClientSession() as session:
        result = await promql(p, session)
    assert (result.ok, result.no_data) == (ok, no_data), result
    assert says in result.detail


@pytest.mark.asyncio
async def test_a_prometheus_that_does_not_answer_in_time_is_no_data(
    prometheus: Callable[[Answer], Any],
) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.6)  # past the probe's 200 ms
        return web.json_response(vector(2))

    url = await prometheus(slow)
    async with aiohttp.ClientSession() as session:
        result = await promql(probe(url, timeout="200ms"), session)
    assert (result.ok, result.no_data) == (False, True)
    assert "no answer within 0.2s" in result.detail
