"""The proxy's listener takes every waiting connection each time it is ready, not one per turn of
the loop (uvloop's own server): a burst of new clients is served at once, not over seconds; and
a listener that is closed leaves no socket behind."""

from __future__ import annotations

import asyncio
import socket

import pytest

from mlchaos.proxy._accept import Acceptor
from tests.proxy.conftest import Echo, MakeProxy

pytestmark = pytest.mark.asyncio

BURST = 200


def _connect_burst(port: int) -> list[socket.socket]:
    """BURST connections the kernel completes (the listen backlog holds them) before the loop
    has a turn to accept any."""
    return [socket.create_connection(("127.0.0.1", port)) for _ in range(BURST)]


async def test_a_burst_is_accepted_within_a_few_turns_of_the_loop() -> None:
    made: list[asyncio.BaseTransport] = []

    class Counted(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            made.append(transport)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    acceptor = Acceptor(sock, Counted)
    clients = _connect_burst(sock.getsockname()[1])
    try:
        for _ in range(5):  # the wake-up, the hand-over tasks, connection_made: a few turns
            await asyncio.sleep(0)
        assert len(made) == BURST  # uvloop's own server takes one per turn: 5 here
    finally:
        acceptor.close()
        for client in clients:
            client.close()
        for transport in made:
            transport.close()
    assert sock.fileno() == -1
    assert not acceptor.is_serving()


async def test_a_proxy_serves_clients_that_connected_before_it_could_accept_them(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(tcp_echo.address, protocol="tcp")
    clients = _connect_burst(proxy.listen_address.port)
    loop = asyncio.get_running_loop()
    try:
        for client in clients:
            client.setblocking(False)
            await loop.sock_sendall(client, b"ping")
        answers = await asyncio.wait_for(
            asyncio.gather(*(loop.sock_recv(c, 4) for c in clients)), 10
        )
        assert answers == [b"ping"] * BURST
    finally:
        for client in clients:
            client.close()
