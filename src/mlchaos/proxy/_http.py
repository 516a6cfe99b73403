"""The HTTP/1.1 data plane: a reverse proxy on asyncio Protocols and httptools.

Each client connection parses requests with httptools, answers them one at a time in order
(pipelined requests wait in a short queue) and keeps the connection alive as HTTP/1.1 and
HTTP/1.0 clients ask. A request body is read whole before the request goes upstream (arms may
be decided by a JSON field, and a fault may replace the answer); the response streams back as
it arrives, re-framed for the client: its content length, or chunked, or (HTTP/1.0 clients)
until the connection closes.

Per request: arm (:mod:`mlchaos.proxy._assign`), then at most one fault that replaces the
answer — tried in the order reset, hang, abort, each with its probability — plus any latency
faults of the arm, which delay the request before whatever happens next, and any data faults
(:mod:`mlchaos.proxy._rewrite`): the request body is rewritten before it goes upstream, and a
response to rewrite is held back whole, rewritten and sent with its new content length. Every
request ends in exactly one call to :meth:`Recorder.record`.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import deque
from http import HTTPStatus
from typing import cast

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

from mlchaos.observations import ErrorKind
from mlchaos.proxy._answers import (
    FAULT_LINE,
    bad_request_message,
    error_body,
    own_response,
    reset_transport,
)
from mlchaos.proxy._assign import ARM_LINES, ArmAssigner
from mlchaos.proxy._config import ProxyConfig
from mlchaos.proxy._faults import FaultEntry, FaultTable
from mlchaos.proxy._live import LiveState
from mlchaos.proxy._rewrite import rewrite_json
from mlchaos.proxy._rules import AbortRule, RewriteRule
from mlchaos.proxy._stats import Recorder
from mlchaos.proxy._upstream import UpstreamConn, UpstreamPool

__all__ = ["HttpPlane"]

_MAX_BODY = 64 * 1024 * 1024
_MAX_HEADERS = 256
_MAX_HEAD = 64 * 1024  # bytes of one request's head (request line and headers)
_MAX_URL = 8 * 1024
_MAX_QUEUE = 8
_OK = ErrorKind.OK

# Request headers the proxy does not forward as they came: hop-by-hop ones, the body framing
# (it sends a content length), and the arm header (it writes the arm it decided).
_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
        b"transfer-encoding",
        b"content-length",
        b"expect",
        b"x-mlchaos-arm",
    }
)

_CONNECTION_OPTIONS = frozenset({b"", b"close", b"keep-alive", b"upgrade"})
# Names a client's Connection header may not have removed: the request's identity and framing
# (``Connection: host`` is a trick to make a proxy forward a request with no Host at all).
_NEVER_DROPPED = frozenset({b"host", b"content-length", b"transfer-encoding"})

# Body framing towards the client.
_NO_BODY, _RAW, _CHUNKED, _BUFFER = 0, 1, 2, 3
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[^\n]*\n")


class _Request:
    """One request as parsed, and what happened to it."""

    __slots__ = (
        "arm",
        "arm_value",
        "body",
        "buffer",
        "capture",
        "drop",
        "expect",
        "fault",
        "fired",
        "hang",
        "has_body",
        "has_host",
        "head_sent",
        "held",
        "http10",
        "keep_alive",
        "key",
        "lines",
        "method",
        "retried",
        "rewrites",
        "row_arms",
        "size",
        "start",
        "status",
        "t0",
        "url",
    )

    def __init__(self, start: float, t0: float) -> None:
        self.start = start
        self.t0 = t0
        self.url = b""
        self.method = b"GET"
        self.lines: list[bytes] = []
        self.body: list[bytes] = []
        self.size = 0
        self.held = 0  # body bytes counted in the plane's total, until released
        self.arm = 0
        self.arm_value: bytes | None = None
        self.drop: set[bytes] | None = None  # more hop-by-hop names, listed in Connection
        self.key: bytes | None = None
        self.has_body = False
        self.has_host = False
        self.expect = False
        self.http10 = False
        self.keep_alive = True
        self.fault = 0  # a fault changed it, here or (by the answer's mark) further on
        self.fired: list[FaultEntry] | None = None  # this proxy's faults that changed it
        self.hang = False
        self.head_sent = False
        self.retried = False
        self.status = 0
        self.rewrites: list[FaultEntry] | None = None  # data faults drawn (hit if they change)
        self.row_arms: list[int] | None = None  # a batched request: each row's arm
        self.buffer: list[bytes] = []  # a response held back to be rewritten
        self.capture: list[bytes] | None = None  # a copy of the answer, for the live log


class HttpPlane:
    """State shared by every client connection of one HTTP proxy."""

    def __init__(
        self, config: ProxyConfig, faults: FaultTable, recorder: Recorder, rng: random.Random
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.faults = faults
        self.recorder = recorder
        self.random = rng.random
        self.assigner = ArmAssigner(config.arms, rng)
        self.live: LiveState | None = None  # set by the server: cohorts and the edge's log
        self.upstream = config.upstream
        self.conns: set[ClientConn] = set()
        self.pool = UpstreamPool(
            self.loop,
            config.upstream.host,
            config.upstream.port,
            config.max_idle_upstream,
            self.conns.__len__,
        )
        self.timeout = config.upstream_timeout.seconds
        self.header_timeout = config.header_timeout.seconds
        self.idle_timeout = config.idle_timeout.seconds
        self.max_connections = _connection_limit(config.max_connections)
        self.max_buffered = config.max_buffered
        self.buffered = 0  # bytes of request bodies held now, all connections together
        self.host_line = b"host: %s\r\n" % str(config.upstream).encode()
        self._sweeper: asyncio.TimerHandle | None = None
        self._period = min(1.0, max(0.01, min(self.timeout, self.header_timeout) / 10))
        self._trimmed = self.loop.time()  # when the pool's peak last decayed

    def protocol(self) -> ClientConn:
        return ClientConn(self)

    def start(self) -> None:
        self._sweeper = self.loop.call_later(self._period, self._sweep)

    def close(self) -> None:
        """Cut every client and upstream connection."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self.abort_all()
        self.pool.close()

    def abort_all(self) -> None:
        """Cut every client connection (the proxy is taken down; the plane stays)."""
        for conn in list(self.conns):
            conn.abort()

    def _sweep(self) -> None:
        """Enforce the timeouts (upstream, client head, idle client): one timer for the plane,
        not one per request."""
        now = self.loop.time()
        for conn in list(self.conns):
            conn.check_timeout(now, self.timeout)
            conn.check_client(now, self.header_timeout, self.idle_timeout)
        if now - self._trimmed >= 1.0:
            self._trimmed = now
            self.pool.trim()
        self._sweeper = self.loop.call_later(self._period, self._sweep)


class ClientConn(asyncio.Protocol):
    """One client connection: parses requests, applies faults, relays the responses."""

    __slots__ = (
        "__weakref__",  # so a test can prove a closed connection is freed at once
        "_bad",
        "_closed",
        "_connecting",
        "_cur",
        "_driving",
        "_head",
        "_in_head",
        "_loop",
        "_mode",
        "_out",
        "_parser",
        "_plane",
        "_queue",
        "_quiet_since",
        "_reading_paused",
        "_req",
        "_seen_rx",
        "_seen_up",
        "_since",
        "_timer",
        "_transport",
        "_up",
        "_writing_paused",
    )

    def __init__(self, plane: HttpPlane) -> None:
        self._plane = plane
        self._loop = plane.loop
        self._parser: HttpRequestParser | None = HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._queue: deque[_Request] = deque()
        self._req: _Request | None = None
        self._cur: _Request | None = None
        self._up: UpstreamConn | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._out: list[bytes] = []
        self._mode = _NO_BODY
        self._seen_up: UpstreamConn | None = None  # what the timeout sweep saw last
        self._seen_rx = 0
        self._quiet_since = 0.0
        self._bad = 0
        self._head = 0  # bytes of the current request's head so far
        self._in_head = True  # between a request's start (or the connection's) and its head's end
        self._since = self._loop.time()  # when the head began, or the connection went idle
        self._closed = False
        self._driving = False
        self._reading_paused = False
        self._writing_paused = False

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        plane = self._plane
        if len(plane.conns) >= plane.max_connections:
            self._bad = 503  # answered at once, then closed: the limit holds
            self._drive()
            return
        plane.conns.add(self)

    def data_received(self, data: bytes) -> None:
        cur = self._cur
        parser = self._parser
        if (cur is not None and cur.hang) or parser is None or self._bad:
            return  # a hung request (or one refused): read and drop
        try:
            parser.feed_data(data)
        except HttpParserUpgrade as exc:
            # The request is complete and queued; the proxy does not switch protocols (it
            # drops the Upgrade header), so whatever follows is parsed as the next request.
            offset = exc.args[0] if exc.args and isinstance(exc.args[0], int) else len(data)
            if offset < len(data):
                self.data_received(data[offset:])
                return
        except HttpParserError:
            self._bad = self._bad or 400
        if self._in_head:  # still inside a head after this read: it counts against the limit
            self._head += len(data)
            if self._head > _MAX_HEAD:  # an endless head (30 MiB of one header): refused now
                self._bad = self._bad or 431
        if self._bad:
            self._pause_reading()
        if self._cur is None:
            queue = self._queue
            if len(queue) == 1 and not self._bad and not self._driving:
                self._begin(queue.popleft())  # the usual case: one request, nothing waiting
            elif queue or self._bad:
                self._drive()

    def pause_writing(self) -> None:
        self._writing_paused = True
        if self._up is not None:
            self._up.pause()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._up is not None:
            self._up.resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._plane.conns.discard(self)
        self._parser = None  # it holds this connection's callbacks: no cycle to wait a GC for
        for pending in (self._req, *self._queue):  # never answered: their bodies go now
            if pending is not None:
                _release(self._plane, pending)
        self._req = None
        self._queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        up, self._up = self._up, None
        if up is not None:
            up.discard()
        req, self._cur = self._cur, None
        if req is not None:  # the client left before its answer: a hang ends here
            error = ErrorKind.TIMEOUT if req.hang else ErrorKind.OTHER
            self._record(req, 0, error)

    def abort(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.abort()

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._req = _Request(time.time(), time.perf_counter())
        if not self._in_head:
            self._in_head, self._head, self._since = True, 0, self._loop.time()

    def on_url(self, url: bytes) -> None:
        assert self._req is not None
        self._req.url += url
        if len(self._req.url) > _MAX_URL:
            self._bad = 414

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self._req
        assert req is not None
        lower = name.lower()
        if lower in _HOP:
            if lower == b"x-mlchaos-arm":
                req.arm_value = value
            elif lower in {b"content-length", b"transfer-encoding"}:
                req.has_body = True
            elif lower == b"expect":
                req.expect = value.strip().lower() == b"100-continue"
            elif lower == b"connection":
                named = {t.strip() for t in value.lower().split(b",")}
                named -= _CONNECTION_OPTIONS | _NEVER_DROPPED
                if named:
                    req.drop = named if req.drop is None else req.drop | named
            return
        if lower == self._plane.assigner.key_header:
            req.key = value.strip()
        elif lower == b"host":
            req.has_host = True
        lines = req.lines
        lines.append(b"%s: %s\r\n" % (name, value))
        if len(lines) > _MAX_HEADERS:
            self._bad = 431

    def on_headers_complete(self) -> None:
        req = self._req
        assert req is not None
        parser = self._parser
        assert parser is not None
        self._in_head = False
        req.method = parser.get_method()
        req.http10 = parser.get_http_version() == "1.0"
        req.keep_alive = parser.should_keep_alive()
        if req.expect and not req.http10 and self._cur is None and not self._queue:
            assert self._transport is not None
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        req = self._req
        assert req is not None
        req.size += len(body)
        plane = self._plane
        if req.size > _MAX_BODY:
            self._bad = 413
            _release(plane, req)
            req.body = []
        elif plane.buffered + len(body) > plane.max_buffered:
            self._bad = 503  # the proxy holds too many bodies at once: try again later
            _release(plane, req)
            req.body = []
        elif not self._bad:
            req.body.append(body)
            req.held += len(body)
            plane.buffered += len(body)

    def on_message_complete(self) -> None:
        req, self._req = self._req, None
        if req is None or self._bad:
            return
        self._queue.append(req)
        if len(self._queue) >= _MAX_QUEUE:
            self._pause_reading()

    # -- answering -------------------------------------------------------------------------------

    def _drive(self) -> None:
        """Answer queued requests in order until one has to wait."""
        if self._driving:
            return
        self._driving = True
        try:
            while self._cur is None and not self._closed:
                if self._queue:
                    self._begin(self._queue.popleft())
                elif self._bad:
                    self._answer_bad()
                else:
                    break
            if self._reading_paused and not self._bad and len(self._queue) < _MAX_QUEUE:
                self._reading_paused = False
                if self._transport is not None and not self._closed:
                    self._transport.resume_reading()
        finally:
            self._driving = False

    def _begin(self, req: _Request) -> None:
        self._cur = req
        plane = self._plane
        assigner = plane.assigner
        if req.arm_value is not None and assigner.trust_header:
            req.arm = assigner.from_header(req.arm_value)
        elif assigner.batched and (rows := assigner.row_arms(b"".join(req.body))) is not None:
            req.row_arms = rows  # each row its arm; the request is in the first arm any row is
            req.arm = next((a for a in (1, 2) if a in rows), 0)
        else:
            if req.key is None and assigner.json_path is not None:
                req.key = assigner.body_key(b"".join(req.body))
            req.arm = assigner.at_random() if req.key is None else assigner.for_key(req.key)
        if req.arm and plane.live is not None and plane.live.log is not None:
            req.capture = []  # a cohort request at a live edge: its answer is read and logged
        faults = plane.faults
        if not len(faults):
            self._forward(req)
            return
        terminal, latencies, data = faults.http_plan(req.arm)
        if req.row_arms is not None:  # a batch: each row meets its own arm's data faults
            data = tuple(
                {e.id: e for a in set(req.row_arms) for e in faults.http_plan(a).data}.values()
            )
        rnd = plane.random
        for entry in data:
            if rnd() < entry.probability:
                req.rewrites = [*(req.rewrites or ()), entry]
                rule = entry.rule
                assert isinstance(rule, RewriteRule)
                if rule.status is not None:  # a new status changes every answer
                    _fired(req, entry)
        chosen: FaultEntry | None = None
        for entry in terminal:
            if rnd() < entry.probability:
                chosen = entry
                _fired(req, entry)
                break
        delay = 0.0
        for entry in latencies:
            if rnd() < entry.probability:
                delay += entry.delay + (rnd() * entry.jitter if entry.jitter else 0.0)
                _fired(req, entry)
        if delay > 0.0:
            due = time.monotonic() + delay
            self._timer = self._loop.call_later(delay, self._act_when_due, req, chosen, due)
        else:
            self._act(req, chosen)

    def _act_when_due(self, req: _Request, chosen: FaultEntry | None, due: float) -> None:
        """A latency fault's timer fired: act, unless that is early. uvloop's timers run on a
        clock of whole milliseconds and may fire up to one early: wait out the rest, so a
        latency fault never delivers less than it asked."""
        rest = due - time.monotonic()
        if rest > 0.0:
            self._timer = self._loop.call_later(rest, self._act_when_due, req, chosen, due)
        else:
            self._act(req, chosen)

    def _act(self, req: _Request, chosen: FaultEntry | None) -> None:
        self._timer = None
        if chosen is None:
            self._forward(req)
            return
        rule = chosen.rule
        if isinstance(rule, AbortRule):
            self._answer(req, rule.status, rule.body.encode(), rule.content_type)
        elif rule.type == "reset":
            self._cur = None
            self._record(req, 0, ErrorKind.RESET)
            self._closed = True
            assert self._transport is not None
            reset_transport(self._transport)
        else:  # hang / blackhole: read the request, never answer, until the client gives up
            req.hang = True
            self._queue.clear()  # what waits behind a hung request is never answered either
            if self._reading_paused and self._transport is not None:
                self._reading_paused = False
                self._transport.resume_reading()

    def _forward(self, req: _Request) -> None:
        up = self._plane.pool.acquire()
        if up is None:
            self._connecting = self._loop.create_task(self._connect(req))
        else:
            self._send(up, req)

    async def _connect(self, req: _Request) -> None:
        plane = self._plane
        try:
            up = await asyncio.wait_for(plane.pool.connect(), plane.timeout)
        except TimeoutError:
            self._connecting = None
            self._fail(req, 504, ErrorKind.TIMEOUT, "did not accept a connection in time")
            return
        except OSError as exc:
            self._connecting = None
            reason = exc.strerror or str(exc) or type(exc).__name__
            self._fail(req, 502, ErrorKind.CONNECT, f"is unreachable ({reason})")
            return
        self._connecting = None
        if self._cur is not req or self._closed:
            plane.pool.release(up)
            return
        self._send(up, req)

    def _send(self, up: UpstreamConn, req: _Request) -> None:
        self._up = up
        if self._writing_paused:
            up.pause()
        lines = req.lines
        if req.drop is not None:
            drop = req.drop
            lines = [h for h in lines if h.split(b":", 1)[0].strip().lower() not in drop]
        parts = [req.method, b" ", req.url, b" HTTP/1.1\r\n", *lines, ARM_LINES[req.arm]]
        if not req.has_host:
            parts.append(self._plane.host_line)
        if req.has_body:
            body = b"".join(req.body)
            if req.rewrites:
                body = _rewrite(req, body, "request")
            parts.append(b"content-length: %d\r\n\r\n" % len(body))
            parts.append(body)
        else:
            parts.append(b"\r\n")
        up.send(self, b"".join(parts), req.method == b"HEAD")

    # -- ResponseSink: called by the upstream connection -----------------------------------------

    def response_head(
        self,
        status: int,
        status_line: bytes,
        lines: bytes,
        has_length: bool,
        chunked: bool,
        faulted: bool,
    ) -> list[bytes] | None:
        req = self._cur
        assert req is not None
        req.status = status
        if faulted:
            req.fault = 1
        req.head_sent = True
        if (
            req.rewrites is not None
            and _rewrites_response(req)
            and req.method != b"HEAD"
            and status not in {204, 304}
        ):
            self._mode = _BUFFER  # held back until complete, then rewritten (response_end)
            req.buffer = [status_line, _CONTENT_LENGTH.sub(b"", lines)]
            return None
        tail = ARM_LINES[req.arm] + FAULT_LINE if req.fault else ARM_LINES[req.arm]
        if req.method == b"HEAD" or status in {204, 304}:
            self._mode = _NO_BODY
            if chunked and not has_length and not req.http10:
                tail += b"transfer-encoding: chunked\r\n"
        elif has_length:
            self._mode = _RAW
        elif req.http10:
            self._mode = _RAW  # delimited by closing the connection
            req.keep_alive = False
        else:
            self._mode = _CHUNKED
            tail += b"transfer-encoding: chunked\r\n"
        if not req.keep_alive:
            tail += b"connection: close\r\n"
        elif req.http10:
            tail += b"connection: keep-alive\r\n"
        out = self._out
        out.append(status_line)
        out.append(lines)
        out.append(tail + b"\r\n")
        # A body sent as it came (a length, or until the end): its pieces go straight out.
        return out if self._mode == _RAW and req.capture is None else None

    def response_body(self, data: bytes) -> None:
        capture = self._cur.capture if self._cur is not None else None
        if capture is not None and len(capture) < 256:
            capture.append(data)
        if self._mode == _BUFFER:
            assert self._cur is not None
            self._cur.buffer.append(data)
        elif self._mode == _CHUNKED:
            self._out.extend((b"%x\r\n" % len(data), data, b"\r\n"))
        elif self._mode == _RAW:
            self._out.append(data)

    def response_flush(self) -> None:
        out = self._out
        if out and self._transport is not None and not self._closed:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    def response_end(self, conn: UpstreamConn, keep_alive: bool) -> None:
        if self._mode == _BUFFER:
            assert self._cur is not None
            self._out.append(_rewritten(self._cur))
        elif self._mode == _CHUNKED:
            self._out.append(b"0\r\n\r\n")
        self.response_flush()
        self._up = None
        if keep_alive:
            self._plane.pool.release(conn)
        elif not conn.closed:
            conn.discard()
        req = self._cur
        assert req is not None
        self._finish(req, req.status, _OK)

    def upstream_failed(self, conn: UpstreamConn, error: ErrorKind) -> None:
        self._up = None
        req = self._cur
        assert req is not None
        if req.head_sent:  # mid-body: cut the client so it sees a truncated response
            self._out.clear()
            req.keep_alive = False
            self._finish(req, req.status, error)
        elif conn.reused and not conn.got_bytes and not req.retried:
            req.retried = True  # a pooled connection the upstream had closed: try a fresh one
            self._forward(req)
        else:
            self._fail(req, 502, error, "closed the connection without a complete response")

    def check_client(self, now: float, header_timeout: float, idle_timeout: float) -> None:
        """Called by the sweep: close a client that is slow sending a request's head (slowloris)
        or that has sent nothing for ``idle_timeout``; a request in progress is the upstream
        timeout's business."""
        if self._closed or self._transport is None or self._cur is not None or self._queue:
            return
        waited = now - self._since
        if (self._in_head and self._head > 0 and waited > header_timeout) or (
            waited > idle_timeout and (not self._in_head or self._head == 0)
        ):
            self._closed = True
            self._transport.close()

    def check_timeout(self, now: float, timeout: float) -> None:
        """Called by the sweep: 504 (or a cut) once the upstream is quiet for ``timeout``.

        Quiet time is counted from the first sweep that saw no progress, so a timeout fires
        between one and about 1.2 times ``timeout`` after the upstream's last sign of life.
        """
        up = self._up
        if up is None:
            return
        if up is not self._seen_up or up.rx != self._seen_rx:
            self._seen_up = up
            self._seen_rx = up.rx
            self._quiet_since = now
            return
        if now - self._quiet_since < timeout:
            return
        self._up = None
        up.discard()
        req = self._cur
        assert req is not None
        if req.head_sent:
            self._out.clear()
            req.keep_alive = False
            self._finish(req, req.status, ErrorKind.TIMEOUT)
        else:
            self._fail(req, 504, ErrorKind.TIMEOUT, f"did not answer within {timeout:g}s")

    # -- endings ---------------------------------------------------------------------------------

    def _fail(self, req: _Request, status: int, error: ErrorKind, what: str) -> None:
        if self._closed or self._cur is not req:
            return
        body = error_body(f"upstream {self._plane.upstream} {what}")
        self._answer(req, status, body, "application/json", error=error)

    def _answer(
        self,
        req: _Request,
        status: int,
        body: bytes,
        content_type: str,
        *,
        error: ErrorKind = _OK,
    ) -> None:
        """Answer ``req`` from the proxy itself (injected aborts and proxy errors)."""
        if self._transport is None or self._closed:
            return
        req.status = status
        self._transport.write(
            own_response(
                status,
                body,
                content_type,
                arm=req.arm,
                keep_alive=req.keep_alive,
                http10=req.http10,
                head_only=req.method == b"HEAD",
                fault=bool(req.fault),
            )
        )
        self._finish(req, status, error)

    def _answer_bad(self) -> None:
        """A request the proxy could not parse: answer, record and close."""
        status = self._bad
        req = _Request(time.time(), time.perf_counter())
        req.keep_alive = False
        self._cur = req
        body = error_body(bad_request_message(status))
        self._answer(req, status, body, "application/json", error=ErrorKind.PROTOCOL)

    def _finish(self, req: _Request, status: int, error: ErrorKind) -> None:
        self._cur = None
        self._since = self._loop.time()  # idle from here, until the next request begins
        self._record(req, status, error)
        if not req.keep_alive:
            self._closed = True
            if self._transport is not None:
                self._transport.close()
            return
        if self._queue or self._bad:
            self._drive()
        elif self._reading_paused and not self._bad:
            self._reading_paused = False
            assert self._transport is not None
            self._transport.resume_reading()

    def _record(self, req: _Request, status: int, error: ErrorKind) -> None:
        latency = time.perf_counter() - req.t0
        plane = self._plane
        _release(plane, req)
        if req.fired is not None:
            for entry in req.fired:
                entry.hits[req.arm] += 1
        plane.recorder.record(req.arm, req.start, latency, status, error, req.fault)
        if req.capture is not None and plane.live is not None and plane.live.log is not None:
            body = b"".join(req.capture) if error == _OK and 200 <= status < 300 else None
            plane.live.log.add(req.arm, req.start, latency, status, error, req.fault, body, req.key)

    def _pause_reading(self) -> None:
        if not self._reading_paused and self._transport is not None and not self._closed:
            self._reading_paused = True
            self._transport.pause_reading()


def _fired(req: _Request, entry: FaultEntry) -> None:
    """``entry`` changed ``req``: counted (per arm) when the request ends, and marked."""
    if req.fired is None:
        req.fired = [entry]
    elif entry not in req.fired:
        req.fired.append(entry)
    req.fault = 1


def _rewrite(req: _Request, body: bytes, which: str) -> bytes:
    """``body`` after the request's data faults; those that changed it count as fired. In a
    batched request each fault changes only the rows of its arms (``[#]``)."""
    entries = req.rewrites or []
    rules = [cast("RewriteRule", e.rule) for e in entries]
    row_arms = req.row_arms
    rows = (
        None
        if row_arms is None
        else [frozenset(i for i, a in enumerate(row_arms) if a in e.arms) for e in entries]
    )
    request = _request_document(req) if which == "response" and _reads_request(rules) else None
    body, changed = rewrite_json(body, rules, which, rows, request)
    for entry, hit in zip(entries, changed, strict=True):
        if hit:
            _fired(req, entry)
    return body


def _reads_request(rules: list[RewriteRule]) -> bool:
    return any(e.where is not None and e.where.not_keys_of for r in rules for e in r.response)


def _request_document(req: _Request) -> object:
    """The request's JSON body, decoded (None when it is not JSON)."""
    try:
        return json.loads(b"".join(req.body))
    except (ValueError, UnicodeDecodeError):
        return None


def _rewrites_response(req: _Request) -> bool:
    return any(
        cast("RewriteRule", e.rule).response or cast("RewriteRule", e.rule).status is not None
        for e in req.rewrites or ()
    )


def _rewritten(req: _Request) -> bytes:
    """The whole answer to ``req`` after its data faults: head, then a content-length body."""
    status_line, lines, *chunks = req.buffer
    req.buffer = []
    assert req.rewrites is not None
    body = b"".join(chunks)
    body = _rewrite(req, body, "response")
    if req.capture is not None:
        req.capture = [body]  # the live log reads the answer the client got
    for entry in req.rewrites:
        rule = entry.rule
        if isinstance(rule, RewriteRule) and rule.status is not None:
            req.status = rule.status
            reason = HTTPStatus(rule.status).phrase.encode() if rule.status in _KNOWN else b""
            status_line = b"HTTP/1.1 %d %s\r\n" % (rule.status, reason)
    tail = ARM_LINES[req.arm] + b"content-length: %d\r\n" % len(body)
    if req.fault:
        tail += FAULT_LINE
    if not req.keep_alive:
        tail += b"connection: close\r\n"
    elif req.http10:
        tail += b"connection: keep-alive\r\n"
    return b"".join((status_line, lines, tail, b"\r\n", body))


_KNOWN = frozenset(s.value for s in HTTPStatus)


def _connection_limit(configured: int) -> int:
    """At most ``configured`` clients, and never so many that the proxy runs out of file
    descriptors: each client may need an upstream connection too, and the control API and
    the pool need some to spare."""
    import resource  # noqa: PLC0415

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, (soft - 64) // 2))


def _release(plane: HttpPlane, req: _Request) -> None:
    """``req``'s body no longer counts against the plane's total."""
    plane.buffered -= req.held
    req.held = 0
