"""The proxy holds its resources under attack: bounded heads and URLs, slow and idle clients cut
by timeouts, a connection limit answered with 503, and closed connections freed at once."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from tests.proxy.conftest import MakeProxy, Upstream, connect, read_response


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), seconds) == b""
    except TimeoutError:
        return False


@pytest.mark.asyncio
async def test_an_endless_head_and_a_huge_url_are_refused(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    reader, writer = await connect(proxy)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Junk: ")
    for _ in range(20):  # 1 MiB of one header that never ends
        writer.write(b"a" * 65536)
    await writer.drain()
    resp = await read_response(reader)
    assert resp.status == 431
    writer.close()
    reader, writer = await connect(proxy)
    writer.write(b"GET /" + b"u" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    assert (await read_response(reader)).status == 414
    writer.close()
    assert http_upstream.seen == [], "nothing reached the upstream"


@pytest.mark.asyncio
async def test_slow_and_idle_clients_are_cut_by_the_timeouts(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address, header_timeout="300ms", idle_timeout="600ms")
    slow_reader, slow = await connect(proxy)
    slow.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # a slowloris: the head never ends
    await slow.drain()
    idle_reader, idle = await connect(proxy)  # sends nothing at all
    kept_reader, kept = await connect(proxy)
    kept.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")  # answered, then idle on keep-alive
    await kept.drain()
    assert (await read_response(kept_reader)).status == 200
    assert await closed_within(slow_reader, 3.0), "the slowloris was not cut"
    assert await closed_within(idle_reader, 3.0), "the idle connection was not cut"
    assert await closed_within(kept_reader, 3.0), "the idle keep-alive was not cut"
    for w in (slow, idle, kept):
        w.close()


@pytest.mark.asyncio
async def test_beyond_the_connection_limit_clients_get_503(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address, max_connections=3)
    held = [await connect(proxy) for _ in range(3)]
    await asyncio.sleep(0.05)
    reader, writer = await connect(proxy)
    resp = await read_response(reader)
    assert resp.status == 503
    writer.close()
    r, w = held[0]
    w.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")  # those inside still work
    await w.drain()
    assert (await read_response(r)).status == 200
    for _, w in held:
        w.close()


@pytest.mark.asyncio
async def test_a_closed_connection_is_freed_without_waiting_for_the_garbage_collector(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    plane = proxy._plane  # type: ignore[attr-defined]
    gc.disable()
    try:
        _, writer = await connect(proxy)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * 30000)
        await writer.drain()
        await asyncio.sleep(0.05)
        (conn,) = plane.conns
        ref = weakref.ref(conn)
        del conn
        writer.transport.abort()
        for _ in range(20):
            await asyncio.sleep(0.01)
            if ref() is None:
                break
        assert ref() is None, "a reference cycle keeps the closed connection (and its buffers)"
    finally:
        gc.enable()


@pytest.mark.asyncio
async def test_request_bodies_held_at_once_are_capped_across_all_clients(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address, max_buffered=2**20)
    plane = proxy._plane  # type: ignore[attr-defined]
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n"
    first_reader, first = await connect(proxy)
    first.write(head + b"a" * 700_000)  # unfinished: held by the proxy
    await first.drain()
    second_reader, second = await connect(proxy)
    second.write(head + b"b" * 700_000)  # together past 1 MiB
    await second.drain()
    assert (await read_response(second_reader)).status == 503
    first.close()
    second.close()
    for _ in range(50):
        await asyncio.sleep(0.02)
        if plane.buffered == 0:
            break
    assert plane.buffered == 0, "bodies of closed connections no longer count"
    del first_reader
