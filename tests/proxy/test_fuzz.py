"""Hostile clients: garbage on the wire never crashes the proxy or reaches the upstream."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.proxy.conftest import MakeProxy, Upstream, raw_request

VALID = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
SEEDS = [
    b"GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"\x00\xff" * 40,
    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
]


def mutations(count: int, seed: int) -> list[bytes]:
    """Seeded random byte strings and corruptions of a valid request."""
    rng = random.Random(seed)
    out = list(SEEDS)
    while len(out) < count:
        blob = bytearray(VALID + b"GET / HTTP/1.1\r\nHost: y\r\n\r\n")
        for _ in range(rng.randint(1, 6)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        out.append(bytes(blob) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 200)))
    return out


async def send_garbage(address: str, data: bytes) -> bytes:
    """Send ``data`` and half-close; return what came back before the proxy closed."""
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        writer.write_eof()
        async with asyncio.timeout(2):
            return await reader.read()
    except ConnectionError:
        return b""
    finally:
        writer.close()


@pytest.mark.asyncio
async def test_random_and_corrupted_requests_never_take_the_proxy_down(
    http_upstream: Upstream, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(http_upstream.address)
    address = str(proxy.listen_address)
    answers = [await send_garbage(address, data) for data in mutations(150, seed=7)]
    rejected = sum(a.startswith(b"HTTP/1.1 400") for a in answers)
    assert rejected >= len(SEEDS)  # the hand-made bad requests at least are refused
    assert all(a == b"" or a.startswith(b"HTTP/1.1 ") for a in answers)  # HTTP, or a close
    resp = await raw_request(address, VALID)
    assert resp.status == 200
    assert all(s.method in {"GET", "POST", "HEAD", "PUT", "DELETE"} for s in http_upstream.seen)
