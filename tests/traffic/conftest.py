"""Real servers on loopback ports for the traffic tests: the toy upstream and scripted ones.

``http_server(handler)`` serves one aiohttp handler on every path; ``tcp_server(handler)``
serves raw TCP (for servers that hang, reset or speak garbage). Both track what they accepted
and close everything at teardown.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from mlchaos.testing import Upstream, start_upstream

HttpHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TcpHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest_asyncio.fixture
async def toy_upstream() -> AsyncIterator[Upstream]:
    async with await start_upstream() as up:
        yield up


@pytest_asyncio.fixture
async def http_server() -> AsyncIterator[Callable[[HttpHandler], Awaitable[str]]]:
    runners: list[web.AppRunner] = []

    async def serve(handler: HttpHandler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    try:
        yield serve
    finally:
        for runner in runners:
            await runner.cleanup()


@dataclass
class TcpServer:
    """A raw TCP server: its URL, the connections it accepted and their handler tasks."""

    url: str
    accepted: int = 0
    done: int = 0
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> bool:
        """Wait at most ``within`` seconds for ``predicate()`` to hold after an accept or close."""
        try:
            async with asyncio.timeout(within), self.changed:
                await self.changed.wait_for(predicate)
        except TimeoutError:
            return False
        return True

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()


@pytest_asyncio.fixture
async def tcp_server() -> AsyncIterator[Callable[[TcpHandler], Awaitable[TcpServer]]]:
    servers: list[asyncio.Server] = []
    state: list[TcpServer] = []
    writers: set[asyncio.StreamWriter] = set()

    async def serve(handler: TcpHandler) -> TcpServer:
        info = TcpServer(url="")

        async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            info.tasks.add(task)
            info.accepted += 1
            writers.add(writer)
            await info.notify()
            try:
                await handler(reader, writer)
            finally:
                writer.close()
                info.done += 1
                await info.notify()

        server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
        servers.append(server)
        info.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        state.append(info)
        return info

    try:
        yield serve
    finally:
        for server in servers:
            server.close()
        tasks = [t for info in state for t in info.tasks]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for w in writers:
            w.close()
        for server in servers:
            await server.wait_closed()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that is bound but not listening: connecting is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()
