"""The TCP relay's one-direction faults (Toxiproxy's toxics, by stream) against a real echo
server and a real upstream that records what reaches it and when."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from mlchaos.observations import ErrorKind
from mlchaos.proxy import ProxyServer
from tests.proxy.conftest import Echo, MakeProxy
from tests.proxy.test_tcp import ALL_EXPERIMENT, connect, rule, settled


@dataclass
class Recording:
    """An upstream that answers each connection with ``answer`` and records each read."""

    port: int = 0
    answer: bytes = b""
    reads: list[tuple[float, int]] = field(default_factory=list)  # (time, bytes)
    closed_at: list[float] = field(default_factory=list)  # the proxy's start checks one

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest_asyncio.fixture
async def recording() -> AsyncIterator[Recording]:
    state = Recording()
    now = time.monotonic  # precise: uvloop's loop.time() counts whole ms, read once per turn

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if state.answer:
            writer.write(state.answer)
        try:
            while data := await reader.read(65536):
                state.reads.append((now(), len(data)))
        except OSError:
            pass
        state.closed_at.append(now())
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


async def echo_time(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> float:
    t0 = time.monotonic()
    writer.write(payload)
    assert await asyncio.wait_for(reader.readexactly(len(payload)), 3) == payload
    return time.monotonic() - t0


async def tcp_proxy(make_proxy: MakeProxy, upstream: str) -> ProxyServer:
    return await make_proxy(upstream, protocol="tcp", arms=ALL_EXPERIMENT)


@pytest.mark.asyncio
async def test_latency_on_one_stream_delays_only_that_direction(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    proxy = await tcp_proxy(make_proxy, tcp_echo.address)
    reader, writer = await connect(proxy)
    try:
        base = await echo_time(reader, writer, b"warm")
        proxy.faults.add(rule(type="latency", delay="150ms", stream="downstream"))
        one_way = await echo_time(reader, writer, b"ping")
        proxy.faults.add(rule(type="latency", delay="150ms", stream="upstream"), fault_id="up")
        both_ways = await echo_time(reader, writer, b"pong")
    finally:
        writer.close()
    assert one_way >= 0.15, "the answer waited 150 ms"
    assert both_ways >= 0.30, "now the request waits 150 ms too"
    assert base < one_way


@pytest.mark.asyncio
async def test_slow_close_holds_the_end_of_the_stream_back(
    recording: Recording, make_proxy: MakeProxy
) -> None:
    proxy = await tcp_proxy(make_proxy, recording.address)
    proxy.faults.add(rule(type="slow_close", delay="400ms", stream="upstream"))
    _reader, writer = await connect(proxy)
    writer.write(b"data")
    await writer.drain()
    await asyncio.sleep(0.05)
    t0 = time.monotonic()
    writer.close()
    for _ in range(300):
        if len(recording.closed_at) == 2:
            break
        await asyncio.sleep(0.01)
    _, closed = recording.closed_at
    assert closed - t0 >= 0.4, "the upstream saw the close no sooner than 400 ms after it"
    assert sum(n for _, n in recording.reads) == 4, "the data itself was not held"
    await settled(proxy)


@pytest.mark.asyncio
async def test_timeout_drops_the_stream_and_closes_after_its_time(
    recording: Recording, make_proxy: MakeProxy
) -> None:
    proxy = await tcp_proxy(make_proxy, recording.address)
    proxy.faults.add(rule(type="timeout", close_after="300ms", stream="upstream"))
    reader, writer = await connect(proxy)
    t0 = time.monotonic()
    writer.write(b"lost")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 3) == b"", "closed by the proxy"
    elapsed = time.monotonic() - t0
    writer.close()
    assert 0.3 <= elapsed < 2.0
    assert recording.reads == [], "nothing reached the upstream"
    await settled(proxy)
    store = proxy.observations
    assert store is not None
    assert list(store.column("error")) == [ErrorKind.TIMEOUT]


@pytest.mark.asyncio
async def test_a_timeout_that_goes_closes_the_connections_it_held(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    proxy = await tcp_proxy(make_proxy, tcp_echo.address)
    fault_id = proxy.faults.add(rule(type="timeout", stream="downstream"))
    reader, writer = await connect(proxy)
    writer.write(b"unanswered")
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), 0.3)  # the answer is dropped; no close (0)
    assert tcp_echo.received == len(b"unanswered"), "the upstream direction is untouched"
    proxy.faults.remove(fault_id)
    assert await asyncio.wait_for(reader.read(), 3) == b"", "closed, as Toxiproxy does"
    writer.close()
    await settled(proxy)


@pytest.mark.asyncio
async def test_reset_after_a_delay_resets_that_long_after_the_first_data(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    proxy = await tcp_proxy(make_proxy, tcp_echo.address)
    proxy.faults.add(rule(type="reset", after="300ms", stream="upstream"))
    reader, writer = await connect(proxy)
    t0 = time.monotonic()
    writer.write(b"hello")
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(), 3)
    assert time.monotonic() - t0 >= 0.3
    writer.close()
    assert tcp_echo.received == 0, "the data that met the fault was dropped"


@pytest.mark.asyncio
async def test_slicer_cuts_the_stream_into_small_spaced_pieces(
    recording: Recording, make_proxy: MakeProxy
) -> None:
    proxy = await tcp_proxy(make_proxy, recording.address)
    proxy.faults.add(
        rule(type="slicer", average_size=10, size_variation=3, delay="20ms", stream="upstream")
    )
    _reader, writer = await connect(proxy)
    writer.write(bytes(200))
    await writer.drain()
    for _ in range(300):
        if sum(n for _, n in recording.reads) == 200:
            break
        await asyncio.sleep(0.01)
    writer.close()
    sizes = [n for _, n in recording.reads]
    assert sum(sizes) == 200
    assert len(sizes) >= 10, f"arrived in pieces, not at once: {sizes}"
    assert max(sizes) <= 2 * 13, "pieces near 10 ± 3 bytes (two may meet in one read)"
    times = [t for t, _ in recording.reads]
    assert times[-1] - times[0] >= 0.02 * (len(sizes) - 1) * 0.9


@pytest.mark.asyncio
async def test_limit_data_passes_that_many_bytes_then_closes(
    recording: Recording, make_proxy: MakeProxy
) -> None:
    recording.answer = bytes(range(100))
    proxy = await tcp_proxy(make_proxy, recording.address)
    proxy.faults.add(rule(type="limit_data", bytes=37, stream="downstream"))
    reader, writer = await connect(proxy)
    got = await asyncio.wait_for(reader.read(), 3)
    writer.close()
    assert got == bytes(range(37))
    await settled(proxy)


@pytest.mark.asyncio
async def test_a_limit_of_no_bytes_closes_a_new_connection_and_ends_its_record(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    proxy = await tcp_proxy(make_proxy, tcp_echo.address)
    proxy.faults.add(rule(type="limit_data", bytes=0, stream="upstream"))
    reader, writer = await connect(proxy)
    assert await asyncio.wait_for(reader.read(), 3) == b""
    writer.close()
    await settled(proxy)  # the relay ended (one record), even though it never connected
    store = proxy.observations
    assert store is not None
    assert list(store.column("error")) == [ErrorKind.OTHER]


def test_http_proxies_refuse_a_stream_or_a_delayed_reset() -> None:
    from mlchaos.errors import ConfigError
    from mlchaos.proxy import FaultTable, Protocol

    async def add(data: dict[str, object]) -> None:
        FaultTable(Protocol.HTTP).add(rule(**data))

    for data in (
        {"type": "latency", "delay": "1s", "stream": "upstream"},
        {"type": "reset", "after": "1s"},
    ):
        with pytest.raises(ConfigError, match="applies to tcp proxies"):
            asyncio.run(add(data))
    with pytest.raises(ConfigError, match="does not apply in http mode"):
        asyncio.run(add({"type": "slicer", "average_size": 10}))
