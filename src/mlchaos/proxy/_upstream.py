"""Upstream side of the HTTP proxy: one keep-alive connection per exchange, and their pool.

An :class:`UpstreamConn` carries one request at a time and parses the response with
httptools, handing the pieces to a :class:`ResponseSink` (the client connection that asked)
as they arrive, so the response streams through without being buffered. When the response
ends on a reusable connection it goes back to the :class:`UpstreamPool` (most recently used
first, as many as there are client connections, at most ``max_idle``).

The response head is passed on as the raw bytes the upstream sent, less its hop-by-hop
headers, instead of being rebuilt from one Python callback per header: on the hot path that
halves the cost of a response head. A head byte for byte the same as the last one the pool read
(a server sending one file or one kind of answer) reuses that reading and is not scanned again.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Protocol, cast

from httptools import HttpParserError, HttpResponseParser

from mlchaos.observations import ErrorKind

__all__ = ["ResponseSink", "UpstreamConn", "UpstreamPool"]

_FEW = 8  # idle connections kept even with fewer clients

# Response headers the proxy does not pass on: hop-by-hop ones (it frames the body itself), and
# the arm header and fault mark of a proxy further upstream (this proxy writes its own).
# Matched on the lower-cased head, at the start of a line (llhttp rejects a space before ':').
_HOP = re.compile(
    rb"\n(?:connection|keep-alive|proxy-connection|te|trailer|transfer-encoding|upgrade"
    rb"|x-mlchaos-arm|x-mlchaos-fault):"
)


class _Head:
    """A response head as read once: what the client is sent of it, and its body framing.

    Servers tend to send the same head again and again (a static file: the ``Date`` changes
    once a second), so the pool keeps the last one read and a response that starts with the
    very same bytes reuses it instead of scanning its headers again.
    """

    __slots__ = ("chunked", "faulted", "has_length", "head", "lines", "status_line")

    def __init__(self, raw: bytes) -> None:
        end = raw.find(b"\r\n\r\n") + 2  # the head is all in raw: the parser just read it
        line_end = raw.find(b"\r\n") + 2
        self.head = raw[: end + 2]
        self.status_line = (
            raw[:line_end] if raw.startswith(b"HTTP/1.1 ") else b"HTTP/1.1" + raw[8:line_end]
        )
        block = raw[line_end - 1 : end]  # the header lines, after the status line's "\n"
        low = block.lower()
        self.has_length = b"\ncontent-length:" in low
        self.chunked = b"\ntransfer-encoding:" in low
        self.faulted = b"\nx-mlchaos-fault:" in low  # a proxy further on changed the answer
        hop = _HOP.search(low)
        while hop is not None:
            start = hop.start()
            stop = low.find(b"\n", start + 1)
            block = block[:start] + block[stop:]
            low = low[:start] + low[stop:]
            hop = _HOP.search(low, start)
        self.lines = block[1:]


class ResponseSink(Protocol):
    """Where an upstream connection delivers the response it parses."""

    def response_head(
        self,
        status: int,
        status_line: bytes,
        lines: bytes,
        has_length: bool,
        chunked: bool,
        faulted: bool,
    ) -> list[bytes] | None:
        """Take the head; return a list to append the body's pieces to as they are, or None
        to have each passed to :meth:`response_body`."""

    def response_body(self, data: bytes) -> None: ...

    def response_flush(self) -> None: ...

    def response_end(self, conn: UpstreamConn, keep_alive: bool) -> None: ...

    def upstream_failed(self, conn: UpstreamConn, error: ErrorKind) -> None: ...


class UpstreamConn(asyncio.Protocol):
    """One connection to the upstream, parsing the response to the request it last sent."""

    __slots__ = (
        "_chunked",
        "_has_length",
        "_informational",
        "_no_body",
        "_parser",
        "_pool",
        "_raw",
        "_stale_parser",
        "body_out",
        "closed",
        "got_bytes",
        "head_done",
        "paused",
        "reused",
        "rx",
        "sink",
        "transport",
    )

    def __init__(self, pool: UpstreamPool) -> None:
        self._pool = pool
        self._parser = HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.sink: ResponseSink | None = None
        self.body_out: list[bytes] | None = None  # where body bytes go as they are, if anywhere
        self.closed = False
        self.reused = False
        self.paused = False
        self.got_bytes = False
        self.head_done = False
        self.rx = 0  # counts sends and arrivals: the timeout sweep watches it move
        self._no_body = False
        self._stale_parser = False
        self._informational = False
        self._chunked = False
        self._has_length = False
        self._raw = b""  # what arrived since the request was sent, until the head is parsed

    # -- driven by the client side ----------------------------------------------------------------

    def send(self, sink: ResponseSink, data: bytes, no_body: bool) -> None:
        """Send one complete request; the response goes to ``sink``."""
        self.sink = sink
        self._no_body = no_body
        self.got_bytes = self.head_done = self._chunked = self._has_length = False
        self.body_out = None
        self._raw = b""
        self.rx += 1
        assert self.transport is not None
        self.transport.write(data)

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def discard(self) -> None:
        """Drop this connection mid-exchange: it will never be reused."""
        self.sink = self.body_out = None
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is None:  # an idle upstream that talks out of turn cannot be trusted again
            self.discard()
            return
        self.got_bytes = True
        self.rx += 1
        if not self.head_done:
            self._raw = self._raw + data if self._raw else data
        try:
            self._parser.feed_data(data)
        except HttpParserError:
            if self.sink is sink:
                self.sink = None
                self.discard()
                sink.upstream_failed(self, ErrorKind.PROTOCOL)
            else:
                self.discard()
            return
        if self._stale_parser:
            self._stale_parser = False
            self._parser = HttpResponseParser(self)
        if self.sink is sink:
            sink.response_flush()

    def eof_received(self) -> bool | None:
        return None  # close; connection_lost decides what the end of the stream means

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool.forget(self)
        self.body_out = None
        sink, self.sink = self.sink, None
        if sink is None:
            return
        if (
            exc is None
            and self.head_done
            and not self._chunked
            and not self._has_length
            and not self._no_body
        ):
            sink.response_end(self, False)  # a body delimited by the end of the connection
        else:
            sink.upstream_failed(self, ErrorKind.RESET)

    # -- httptools callbacks -------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        sink = self.sink
        if sink is None:
            return
        raw = self._raw
        status = self._parser.get_status_code()
        if status < 200:  # 1xx: informational, the real response follows
            self._informational = True
            self._raw = raw[raw.find(b"\r\n\r\n") + 4 :]
            return
        self._raw = b""
        self.head_done = True
        pool = self._pool
        last = pool.last_head
        if last is not None and raw.startswith(last.head):
            head = last  # the same head as the last response: reuse its reading
        else:
            head = pool.last_head = _Head(raw)
        self._has_length = head.has_length
        self._chunked = head.chunked
        self.body_out = sink.response_head(
            status, head.status_line, head.lines, head.has_length, head.chunked, head.faulted
        )
        if self._no_body:  # HEAD: the parser cannot know the body is absent; end here
            self._stale_parser = True
            self.sink = self.body_out = None
            sink.response_end(self, self._parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        out = self.body_out
        if out is not None:
            out.append(body)
        elif (sink := self.sink) is not None:
            sink.response_body(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        sink = self.sink
        if sink is not None:
            # The exchange is over: whatever the upstream sends after it goes nowhere.
            self.sink = self.body_out = None
            sink.response_end(self, self._parser.should_keep_alive())


class UpstreamPool:
    """Idle keep-alive connections to one upstream, most recently used first.

    How many idle ones it keeps follows the concurrency it sees: as many as there are client
    connections now (``demand``; a client has one request at the upstream at a time), at most
    ``max_idle``. A fixed small number closed most connections of a burst as they came back and
    opened them again for the next request (at 1000 concurrent clients, 64 idle meant 28 times
    more connections opened than clients). :meth:`trim`, once a second, closes the idle
    connections beyond that when clients have gone.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        max_idle: int,
        demand: Callable[[], int],
    ):
        self.loop = loop
        self.host = host
        self.port = port
        self.max_idle = max_idle
        self._demand = demand
        self._idle: list[UpstreamConn] = []
        self.last_head: _Head | None = None  # the last response head read, for reuse
        self._all: set[UpstreamConn] = set()
        self.opened = 0  # connections opened since the start

    def acquire(self) -> UpstreamConn | None:
        """An idle connection, or None when a new one must be opened."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def connect(self) -> UpstreamConn:
        _, conn = await self.loop.create_connection(
            lambda: UpstreamConn(self), self.host, self.port
        )
        self._all.add(conn)
        self.opened += 1
        return conn

    def release(self, conn: UpstreamConn) -> None:
        """Take back a connection whose exchange ended cleanly; close it if the pool is full."""
        if conn.closed:
            return
        if conn.paused:
            conn.resume()
        conn.reused = True
        idle = self._idle
        kept = len(idle)
        # kept < self._keep(), without its calls on the hot path
        if kept < self.max_idle and (kept < _FEW or kept < self._demand()):
            idle.append(conn)
        else:
            self._close(conn)

    def trim(self) -> None:
        """Close the idle connections beyond what the clients now need (the least recently
        used)."""
        extra = len(self._idle) - self._keep()
        if extra > 0:
            stale, self._idle = self._idle[:extra], self._idle[extra:]
            for conn in stale:
                self._close(conn)

    def _keep(self) -> int:
        """How many idle connections to keep: one per client connection, a few at least."""
        return min(self.max_idle, max(self._demand(), _FEW))

    def _close(self, conn: UpstreamConn) -> None:
        conn.closed = True
        assert conn.transport is not None
        conn.transport.close()

    def forget(self, conn: UpstreamConn) -> None:
        self._all.discard(conn)
        if conn in self._idle:
            self._idle.remove(conn)

    def close(self) -> None:
        self._idle.clear()
        for conn in list(self._all):
            conn.discard()
        self._all.clear()
