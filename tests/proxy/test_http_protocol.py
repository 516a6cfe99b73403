"""The HTTP data plane as a reverse proxy: framing, keep-alive, errors, observations."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from mlchaos.arms import ArmCode
from mlchaos.observations import ErrorKind
from tests.proxy.conftest import (
    MakeProxy,
    Upstream,
    body_json,
    connect,
    raw_request,
    read_response,
    scripted_upstream,
)


@pytest.mark.asyncio
async def test_requests_and_responses_pass_through_unchanged(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"http://{proxy.listen_address}/echo?q=1", data=b"x" * 1000, headers={"x-team": "ml"}
        ) as r,
    ):
        assert r.status == 200
        got = await r.json()
    assert got == {
        "method": "POST",
        "path": "/echo",
        "arm": None,
        "length": 1000,
        "body": "x" * 1000,
    }
    seen = http_upstream.seen[-1]
    assert seen.headers["x-team"] == "ml"
    assert seen.headers["Host"] == str(proxy.listen_address)


@pytest.mark.asyncio
async def test_hop_by_hop_request_headers_stay_with_the_proxy(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    """Connection, Keep-Alive, TE and any header the Connection header names are not forwarded."""
    proxy = await make_proxy(http_upstream.address)
    await raw_request(
        str(proxy.listen_address),
        b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\n"
        b"Keep-Alive: timeout=5\r\nTE: trailers\r\nX-Secret: 1\r\nX-Kept: 2\r\n\r\n",
    )
    headers = {k.lower() for k in http_upstream.seen[-1].headers}
    assert "x-kept" in headers
    assert headers.isdisjoint({"connection", "keep-alive", "te", "x-secret"})


@pytest.mark.asyncio
async def test_keep_alive_reuses_one_connection_on_each_side(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as s:
        for i in range(10):
            async with s.get(f"http://{proxy.listen_address}/echo/{i}") as r:
                assert r.status == 200
                await r.read()
                assert proxy.stats().open_connections == 1, "one client connection, kept open"
    assert len(http_upstream.seen) == 10
    assert http_upstream.connections() == 1, "the proxy should pool its upstream connection"


@pytest.mark.asyncio
async def test_chunked_request_body_reaches_the_upstream_whole(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    request = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    resp = await raw_request(str(proxy.listen_address), request)
    assert resp.status == 200
    assert body_json(resp)["body"] == "hello world"
    assert "Transfer-Encoding" not in http_upstream.seen[-1].headers
    assert http_upstream.seen[-1].headers["Content-Length"] == "11"


@pytest.mark.asyncio
async def test_chunked_response_streams_back_chunked(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    resp = await raw_request(str(proxy.listen_address), b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.status == 200
    assert resp.chunked
    assert resp.body == b"part0;part1;part2;part3;part4;"


@pytest.mark.asyncio
async def test_http10_client_gets_a_length_or_the_close_and_no_chunks(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    reader, writer = await connect(proxy)
    try:
        writer.write(b"GET /chunked HTTP/1.0\r\n\r\n")
        resp = await read_response(reader)
        assert resp.status == 200
        assert not resp.chunked
        assert resp.body == b"part0;part1;part2;part3;part4;"
        assert resp.headers.get("connection") == "close"
        assert await reader.read() == b"", "HTTP/1.0 without keep-alive: the proxy closes"
    finally:
        writer.close()
    assert http_upstream.seen[-1].headers["Host"] == http_upstream.address


@pytest.mark.asyncio
async def test_http10_keep_alive_client_keeps_its_connection(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    reader, writer = await connect(proxy)
    try:
        for _ in range(2):
            writer.write(b"GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            resp = await read_response(reader)
            assert resp.status == 200
            assert resp.headers.get("connection") == "keep-alive"
            assert "content-length" in resp.headers
    finally:
        writer.close()


@pytest.mark.asyncio
async def test_connection_close_is_honoured(http_upstream: Upstream, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(http_upstream.address)
    reader, writer = await connect(proxy)
    try:
        writer.write(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        resp = await read_response(reader)
        assert resp.status == 200
        assert resp.headers.get("connection") == "close"
        assert await asyncio.wait_for(reader.read(), 2) == b""
    finally:
        writer.close()


@pytest.mark.asyncio
async def test_head_gets_headers_without_a_body_and_the_connection_stays_usable(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    reader, writer = await connect(proxy)
    try:
        writer.write(b"HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await read_response(reader, head=True)
        assert head.status == 200
        assert int(head.headers["content-length"]) > 0
        writer.write(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = await read_response(reader)
        assert resp.status == 200
        assert body_json(resp)["method"] == "GET"
    finally:
        writer.close()
    assert [s.method for s in http_upstream.seen] == ["HEAD", "GET"]
    assert http_upstream.connections() == 1


@pytest.mark.asyncio
async def test_pipelined_requests_are_answered_in_order(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    reader, writer = await connect(proxy)
    try:
        writer.write(b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5)))
        paths = [body_json(await read_response(reader))["path"] for _ in range(5)]
    finally:
        writer.close()
    assert paths == [f"/p{i}" for i in range(5)]


@pytest.mark.asyncio
async def test_malformed_request_gets_400_and_the_proxy_serves_the_next_client(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    store = proxy.observations
    assert store is not None
    reader, writer = await connect(proxy)
    try:
        writer.write(b"THIS IS NOT HTTP\r\n\x00\x01\r\n\r\n")
        resp = await read_response(reader)
        assert resp.status == 400
        assert resp.headers.get("connection") == "close"
        assert await asyncio.wait_for(reader.read(), 2) == b""
    finally:
        writer.close()
    good = await raw_request(str(proxy.listen_address), b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert good.status == 200
    assert list(store.column("status")) == [400, 200]
    assert list(store.column("error")) == [ErrorKind.PROTOCOL, ErrorKind.OK]
    assert http_upstream.connections() == 1


@pytest.mark.asyncio
async def test_upstream_down_mid_run_gives_502_then_recovers(make_proxy: MakeProxy) -> None:
    from aiohttp import web

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    try:
        proxy = await make_proxy(f"127.0.0.1:{port}")
        url = f"http://{proxy.listen_address}/"
        async with aiohttp.ClientSession() as s:
            async with s.get(url) as r:
                assert r.status == 200
            await runner.cleanup()  # the upstream goes away; the pooled connection dies
            async with s.get(url) as r:
                assert r.status == 502
                assert "127.0.0.1" in (await r.json())["error"]
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            async with s.get(url) as r:
                assert r.status == 200
    finally:
        await runner.cleanup()
    store = proxy.observations
    assert store is not None
    assert list(store.column("status")) == [200, 502, 200]
    assert list(store.column("error")) == [ErrorKind.OK, ErrorKind.CONNECT, ErrorKind.OK]


@pytest.mark.asyncio
async def test_slow_upstream_gives_504_after_upstream_timeout(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address, upstream_timeout="200ms")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    resp = await raw_request(
        str(proxy.listen_address), b"GET /slow?s=2 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    elapsed = loop.time() - t0
    assert resp.status == 504
    assert 0.19 <= elapsed < 1.0
    store = proxy.observations
    assert store is not None
    assert list(store.column("error")) == [ErrorKind.TIMEOUT]


@pytest.mark.asyncio
async def test_upstream_status_passes_through_and_counts_5xx_as_errors(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    async with aiohttp.ClientSession() as s:
        for code in (404, 503):
            async with s.get(f"http://{proxy.listen_address}/status/{code}") as r:
                assert r.status == code
    stats = proxy.stats()
    assert stats.arms["none"].requests == 2
    assert stats.arms["none"].errors == 1


@pytest.mark.asyncio
async def test_every_request_is_recorded_once_with_arm_status_latency(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    async with aiohttp.ClientSession() as s:
        for arm in ("experiment", "control", "bogus"):
            async with s.get(
                f"http://{proxy.listen_address}/slow?s=0.05", headers={"x-mlchaos-arm": arm}
            ) as r:
                assert r.status == 200
    store = proxy.observations
    assert store is not None
    assert len(store) == 3
    assert list(store.column("arm")) == [ArmCode.EXPERIMENT, ArmCode.CONTROL, ArmCode.NONE]
    assert list(store.column("status")) == [200, 200, 200]
    assert all(0.04 <= x < 1.0 for x in store.column("latency"))
    assert all(x > 1e9 for x in store.column("start")), "start is wall-clock time"
    assert list(store.column("fault")) == [0, 0, 0]


@pytest.mark.asyncio
async def test_client_that_leaves_mid_request_does_not_break_the_proxy(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    host, port = str(proxy.listen_address).rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /slow?s=0.3 HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(0.05)
    resp = await raw_request(str(proxy.listen_address), b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.status == 200
    store = proxy.observations
    assert store is not None
    await asyncio.sleep(0.05)
    assert sorted(store.column("error").tolist()) == [ErrorKind.OK, ErrorKind.OTHER]


@pytest.mark.asyncio
async def test_upstream_http10_close_delimited_response_after_a_1xx_is_reframed(
    make_proxy: MakeProxy,
) -> None:
    """1xx heads are dropped, hop-by-hop headers stripped, a body that ends with the
    connection goes to an HTTP/1.1 client chunked, and the client's connection stays open."""
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.0 200 OK\r\nX-Thing: 1\r\nConnection: close\r\nKeep-Alive: timeout=5\r\n"
        b"X-Mlchaos-Arm: control\r\n\r\nbody until close"
    )

    async with scripted_upstream([answer]) as address:
        proxy = await make_proxy(address)
        reader, writer = await connect(proxy)
        try:
            for _ in range(2):
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                resp = await read_response(reader)
                assert resp.status == 200
                assert resp.chunked
                assert resp.body == b"body until close"
                assert resp.headers["x-thing"] == "1"
                assert {"keep-alive", "connection", "x-mlchaos-arm"}.isdisjoint(resp.headers)
        finally:
            writer.close()


@pytest.mark.asyncio
async def test_upgrade_requests_are_forwarded_as_plain_requests(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    """The proxy does not switch protocols: it drops Upgrade and keeps parsing what follows."""
    proxy = await make_proxy(http_upstream.address)
    reader, writer = await connect(proxy)
    try:
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        paths = [body_json(await read_response(reader))["path"] for _ in range(2)]
    finally:
        writer.close()
    assert paths == ["/ws", "/after"]
    assert "Upgrade" not in http_upstream.seen[0].headers


@pytest.mark.asyncio
async def test_expect_100_continue_is_answered_by_the_proxy(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    reader, writer = await connect(proxy)
    try:
        writer.write(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        resp = await read_response(reader)
    finally:
        writer.close()
    assert resp.status == 200
    assert body_json(resp)["body"] == "hello"
    assert "Expect" not in http_upstream.seen[0].headers


@pytest.mark.asyncio
async def test_large_response_to_a_slow_reader_arrives_intact(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    """A client that does not read fills the proxy's write buffer: the proxy pauses the
    upstream instead of buffering everything, and resumes when the client reads."""
    n = 4_000_000
    proxy = await make_proxy(http_upstream.address)
    host, port = str(proxy.listen_address).rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port), limit=2**16)
    try:
        writer.write(f"GET /big?n={n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await asyncio.sleep(0.2)  # not reading: buffers fill along the way
        resp = await read_response(reader)
        writer.write(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_response(reader)).status == 200, "the connection is reusable after"
    finally:
        writer.close()
    assert resp.status == 200
    assert len(resp.body) == n
    assert resp.body == bytes(i % 251 for i in range(n))


@pytest.mark.asyncio
async def test_abort_of_a_head_request_sends_no_body(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    from mlchaos.proxy import AbortRule

    proxy = await make_proxy(http_upstream.address)
    proxy.faults.add(AbortRule(type="abort", arm="all", status=503, body="gone"))
    reader, writer = await connect(proxy)
    try:
        writer.write(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await read_response(reader, head=True)
        assert head.status == 503
        assert head.headers["content-length"] == "4"
        get = await read_response(reader)
        assert (get.status, get.body) == (503, b"gone"), "no stray body bytes before it"
    finally:
        writer.close()


@pytest.mark.asyncio
async def test_repeated_and_changed_upstream_heads_each_reach_the_client_intact(
    make_proxy: MakeProxy,
) -> None:
    """The pool reuses its reading of a head identical to the last one; a head that differs,
    even in one header or in its framing, is read afresh."""
    answers = [
        b"HTTP/1.1 200 OK\r\nX-N: same\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nX-N: same\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 201 Created\r\nX-N: other\r\nKeep-Alive: 5\r\nContent-Length: 3\r\n\r\nnew",
        b"HTTP/1.1 200 OK\r\nX-N: chunks\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-N: same\r\nContent-Length: 2\r\n\r\nok",
    ]

    seen = []
    async with scripted_upstream(answers) as address:
        proxy = await make_proxy(address)
        reader, writer = await connect(proxy)
        try:
            for _ in answers:
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                resp = await read_response(reader)
                seen.append(
                    (resp.status, resp.headers["x-n"], resp.body, "keep-alive" in resp.headers)
                )
        finally:
            writer.close()
    assert seen == [
        (200, "same", b"ok", False),
        (200, "same", b"ok", False),
        (201, "other", b"new", False),
        (200, "chunks", b"ab", False),
        (200, "same", b"ok", False),
    ]


@pytest.mark.asyncio
async def test_bytes_an_upstream_sends_after_its_answer_never_reach_the_client(
    make_proxy: MakeProxy,
) -> None:
    """An answer followed, in the same packet, by a second one nobody asked for: the client
    gets the answer, and nothing of the extra one, then or with its next answer."""
    smuggled = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!"
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with scripted_upstream([answer + smuggled]) as address:
        proxy = await make_proxy(address)
        reader, writer = await connect(proxy)
        try:
            for _ in range(2):
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head  # nothing before it
                assert b"content-length: 2\r\n" in head.lower()
                assert await reader.readexactly(2) == b"ok"
        finally:
            writer.close()
