"""Hop-by-hop tricks on the proxy: `Connection: host` never strips the Host header."""

from __future__ import annotations

import pytest

from tests.proxy.conftest import MakeProxy, Upstream, connect, read_response


@pytest.mark.asyncio
async def test_connection_host_does_not_remove_the_host_header(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    reader, writer = await connect(proxy)
    writer.write(
        b"GET /x HTTP/1.1\r\nHost: service.example\r\nConnection: host, x-trace\r\n"
        b"X-Trace: 1\r\n\r\n"
    )
    await writer.drain()
    resp = await read_response(reader)
    writer.close()
    await writer.wait_closed()
    assert resp.status == 200
    (seen,) = http_upstream.seen
    assert seen.headers.get("Host") == "service.example"
    assert "X-Trace" not in seen.headers  # a name it may drop is still dropped
