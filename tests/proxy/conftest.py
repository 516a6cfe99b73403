"""Real servers for the proxy tests: an HTTP upstream, a TCP echo server, proxies, raw clients.

``http_upstream`` is an aiohttp server that answers on every path (``/echo`` describes the request
it got; ``/chunked`` streams a chunked body; ``/slow`` waits; ``/big?n=`` sends n patterned
bytes; ``/status/N`` answers N) and
remembers every request and every connection it saw. ``tcp_echo`` is a TCP echo server that
counts its connections. ``make_proxy(upstream_port, **config)`` starts a :class:`ProxyServer`
that is stopped after the test. ``raw_request`` speaks HTTP/1.x byte by byte, for what an
HTTP library would hide (framing, HTTP/1.0, malformed requests, resets).

Every async test here runs twice: on asyncio's own loop and on uvloop, the loop the proxy
runs on in production (their transports differ in ways a proxy notices).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvloop
from aiohttp import web

from mlchaos.observations import ObservationStore
from mlchaos.proxy import ProxyConfig, ProxyServer


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]


@dataclass
class Upstream:
    port: int
    seen: list[Seen] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def connections(self) -> int:
        """Distinct client connections (by peer port) the upstream has served."""
        return len({s.peer for s in self.seen})


async def _serve_app(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


@pytest_asyncio.fixture
async def http_upstream() -> AsyncIterator[Upstream]:
    up = Upstream(port=0)

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else ("?", 0)
        up.seen.append(
            Seen(request.method, request.path, dict(request.headers), body, tuple(peer[:2]))
        )
        path = request.path
        if path == "/chunked":
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for i in range(5):
                await resp.write(f"part{i};".encode())
            await resp.write_eof()
            return resp
        if path == "/slow":
            await asyncio.sleep(float(request.query.get("s", "1")))
        if path == "/big":
            n = int(request.query.get("n", "1000000"))
            return web.Response(body=bytes(i % 251 for i in range(n)))
        if path.startswith("/status/"):
            return web.Response(status=int(path.rsplit("/", 1)[1]), text="status")
        return web.json_response(
            {
                "method": request.method,
                "path": path,
                "arm": request.headers.get("x-mlchaos-arm"),
                "length": len(body),
                "body": body.decode(errors="replace"),
            }
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner, up.port = await _serve_app(app)
    try:
        yield up
    finally:
        await runner.cleanup()


@dataclass
class Echo:
    port: int
    accepted: int = 0
    received: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest_asyncio.fixture
async def tcp_echo() -> AsyncIterator[Echo]:
    """A TCP server that sends back every byte it gets, until the client closes."""
    state = Echo(port=0)
    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.accepted += 1
        writers.add(writer)
        try:
            while data := await reader.read(65536):
                state.received += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writers.discard(writer)
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for w in list(writers):
            w.transport.abort()
        await server.wait_closed()


MakeProxy = Callable[..., Awaitable[ProxyServer]]


@pytest_asyncio.fixture
async def make_proxy(tmp_path: Path) -> AsyncIterator[MakeProxy]:
    """Start proxies on ephemeral ports (token files under tmp_path); all stop after the test."""
    started: list[ProxyServer] = []

    async def start(
        upstream: str,
        *,
        seed: int | None = 0,
        token: str | None = None,
        observations: ObservationStore | None = None,
        **overrides: Any,
    ) -> ProxyServer:
        data: dict[str, Any] = {
            "listen": "127.0.0.1:0",
            "upstream": upstream,
            "control": {"token_file": str(tmp_path / f"token-{len(started)}")},
        }
        data.update(overrides)
        server = ProxyServer(
            ProxyConfig.model_validate(data),
            token=token,
            observations=observations if observations is not None else ObservationStore(),
            seed=seed,
        )
        await server.start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            await server.stop()


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    raw_headers: list[tuple[str, str]]
    body: bytes
    chunked: bool = False


async def read_response(
    reader: asyncio.StreamReader, *, head: bool = False, limit: float = 5.0
) -> RawResponse:
    """Read exactly one HTTP response, leaving whatever follows in ``reader``; its first line
    must be a status line, nothing before it.

    The body is read as its framing says (content length, chunks, or until the connection
    closes); a response to HEAD, a 1xx, 204 or 304 has none.
    """
    async with asyncio.timeout(limit):
        try:
            head_bytes = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise ConnectionError("connection closed before a complete response") from exc
        status_line, *lines = head_bytes.decode("latin-1").split("\r\n")[:-2]
        version, code, *_ = [*status_line.split(" ", 2), ""]
        if version not in ("HTTP/1.0", "HTTP/1.1") or not (len(code) == 3 and code.isdigit()):
            # Bytes in front of a response (a smuggled one's tail) are a failure, not noise.
            raise AssertionError(f"not a status line: {status_line!r}")
        status = int(code)
        raw_headers = [(k.strip().lower(), v.strip()) for k, v in (h.split(":", 1) for h in lines)]
        headers = dict(raw_headers)
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        body = b""
        if head or status < 200 or status in (204, 304):
            pass
        elif chunked:
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers from the proxy
                    break
                body += (await reader.readexactly(size + 2))[:-2]
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body = await reader.read()  # delimited by the end of the connection
    return RawResponse(status, headers, raw_headers, body, chunked)


async def raw_request(
    address: str, data: bytes, *, head: bool = False, limit: float = 5.0
) -> RawResponse:
    """Open a connection, send ``data``, read one response, close."""
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        return await read_response(reader, head=head, limit=limit)
    finally:
        writer.close()


def body_json(resp: RawResponse) -> dict[str, Any]:
    value = json.loads(resp.body)
    assert isinstance(value, dict)
    return value


@contextlib.asynccontextmanager
async def scripted_upstream(answers: list[bytes]) -> AsyncIterator[str]:
    """An upstream that answers the requests of one connection with ``answers``, in order,
    byte for byte, then closes; yields its address."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for answer in answers:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def connect(proxy: ProxyServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw client connection to the proxy's data plane."""
    return await asyncio.open_connection(proxy.listen_address.host, proxy.listen_address.port)
