"""The HTTP proxy's upstream pool follows the concurrency it sees: a burst of many concurrent
clients reuses its upstream connections instead of closing and reopening them, and once the
burst is over the idle ones beyond a few are closed."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from mlchaos.proxy._http import HttpPlane
from tests.proxy.conftest import MakeProxy, Upstream


@pytest.mark.asyncio
async def test_a_burst_of_concurrent_clients_reuses_its_upstream_connections(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    url = f"http://{proxy.listen_address}/"
    clients = 300

    async def client() -> None:  # its own connection, ten requests on it
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
            for _ in range(10):
                async with session.get(url) as resp:
                    assert resp.status == 200
                    await resp.read()

    await asyncio.gather(*(client() for _ in range(clients)))
    opened = http_upstream.connections()
    # 3000 requests, at most 300 at once: a fixed pool of 64 idle opened 782 connections.
    assert opened <= 2 * clients, f"{opened} upstream connections for {clients} clients"
    plane = proxy._plane  # the pool itself: how many it keeps once the burst is over
    assert isinstance(plane, HttpPlane)
    for _ in range(60):
        if len(plane.pool._idle) <= 8:
            break
        await asyncio.sleep(0.1)
    assert len(plane.pool._idle) <= 8, "a quiet proxy lets the burst's connections go"
