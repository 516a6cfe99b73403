"""The test upstream on a loopback port, and an HTTP client to talk to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from mlchaos.testing import Upstream, start_upstream


@pytest_asyncio.fixture
async def toy_upstream() -> AsyncIterator[Upstream]:
    async with await start_upstream() as up:
        yield up


@pytest_asyncio.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
