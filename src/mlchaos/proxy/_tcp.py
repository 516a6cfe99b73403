"""The TCP data plane: a byte relay for any protocol, with per-connection faults.

Each accepted connection gets an arm at random by the configured shares (a byte stream has no
header or key to read) and is relayed to the upstream through two one-way pipes. Without a
fault a pipe writes straight through; flow control pauses the reading side while the writing
side's buffer is full.

Faults, each decided once per connection and rule with the rule's probability:

* ``refuse`` — a new connection is closed at once with a reset (RST). The listening socket
  stays open, so a client sees the connection accepted and then reset (``ECONNRESET``), not
  ``ECONNREFUSED``: closing the listener would refuse every arm at once and race with other
  processes for the port.
* ``blackhole`` — a new connection is accepted, read and its bytes dropped; nothing is ever
  forwarded and the upstream is never contacted. On a connection that was already open when
  the rule arrives, both directions stall instead (nothing is lost), as a network partition
  would, until the rule goes.

The rest shape one direction (the rule's ``stream``: ``upstream`` is what the client sends,
``downstream`` what comes back, or ``both``), as Toxiproxy's toxics of the same names do:

* ``reset`` — at the stream's next data (dropped), or ``after`` that, both sides are reset.
* ``latency`` — every chunk waits ``delay`` plus up to ``jitter``; order is kept.
* ``bandwidth`` — held to ``bytes_per_second`` by a token bucket; while the queue is long the
  sending side is paused (backpressure reaches the sender through TCP).
* ``slow_close`` — the end of the stream (FIN) is passed on ``delay`` late.
* ``timeout`` — the stream's bytes are dropped; the connection is closed after
  ``close_after`` without data (never when 0), and when the rule goes.
* ``slicer`` — each chunk is cut into pieces of ``average_size`` ± ``size_variation`` bytes,
  written ``delay`` apart.
* ``limit_data`` — ``bytes`` bytes pass (counted across rule changes), then the connection
  is closed.

Rules added or removed while a connection is open apply to it at once (the plane subscribes
to the fault table). Each connection ends in exactly one :meth:`Recorder.record`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from typing import cast

from mlchaos.arms import ArmCode, arm_for_unit
from mlchaos.observations import ErrorKind
from mlchaos.proxy._answers import reset_transport
from mlchaos.proxy._config import ProxyConfig
from mlchaos.proxy._faults import FaultEntry, FaultTable
from mlchaos.proxy._rules import (
    BandwidthRule,
    LatencyRule,
    LimitDataRule,
    ResetRule,
    Rule,
    SlicerRule,
    SlowCloseRule,
    Stream,
    TimeoutRule,
)
from mlchaos.proxy._stats import Recorder

__all__ = ["TcpPlane"]

_HIGH_WATER = 256 * 1024
# Due times of delayed data are kept on this clock, not the loop's: uvloop's counts whole
# milliseconds (read once per iteration), so data could leave up to a millisecond early. A
# timer that fires early only finds the data not yet due, and waits out the rest.
_clock = time.monotonic


class TcpPlane:
    """State shared by every relayed connection of one TCP proxy."""

    def __init__(
        self, config: ProxyConfig, faults: FaultTable, recorder: Recorder, rng: random.Random
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.faults = faults
        self.recorder = recorder
        self.random = rng.random
        self.experiment = config.arms.experiment.fraction
        self.control = config.arms.control.fraction
        self.host = config.upstream.host
        self.port = config.upstream.port
        self.timeout = config.upstream_timeout.seconds
        self.relays: set[_Relay] = set()
        self._unsubscribe = faults.subscribe(self._replan_all)

    @property
    def conns(self) -> set[_Relay]:
        return self.relays

    def protocol(self) -> _End:
        return _Relay(self).client

    def protocol_of(self, arm: int) -> Callable[[], _End]:
        """The protocol factory of a listener whose every connection is of ``arm``."""
        return lambda: _Relay(self, arm).client

    def start(self) -> None:
        """Nothing to schedule: the relay has no timers of its own until a fault needs one."""

    def close(self) -> None:
        self._unsubscribe()
        self.abort_all()

    def abort_all(self) -> None:
        """Cut every relayed connection (the proxy is taken down; the plane stays)."""
        for relay in list(self.relays):
            relay.abort()

    def arm(self) -> int:
        experiment, control = self.experiment, self.control
        if experiment == 0.0 and control == 0.0:
            return ArmCode.NONE
        return ArmCode.of(arm_for_unit(self.random(), experiment, control))

    def rules_for(self, arm: int) -> list[FaultEntry]:
        return [e for e in self.faults.entries() if arm in e.arms]

    def _replan_all(self) -> None:
        by_arm = [self.rules_for(arm) for arm in ArmCode]
        for relay in list(self.relays):
            relay.replan(by_arm[relay.arm], accepting=False)


class _End(asyncio.Protocol):
    """One side of a relay (the client or the upstream)."""

    __slots__ = ("closed", "feeder", "pipe", "relay", "transport")

    def __init__(self, relay: _Relay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.pipe: _Pipe  # carries what this side sends
        self.feeder: _Pipe  # writes into this side
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        if self is self.relay.client:
            self.relay.accepted()
        else:
            # Connected: from now on closing the relay closes this transport. (Data can
            # arrive, and a fault act on it, before the connecting task resumes; cancelling
            # that task then would leave this connection open.)
            self.relay.connecting = None

    def data_received(self, data: bytes) -> None:
        pipe = self.pipe
        if pipe.direct:
            dst = pipe.dst.transport
            assert dst is not None
            dst.write(data)
        else:
            pipe.feed(data)

    def eof_received(self) -> bool:
        self.pipe.end_of_input()
        return True  # keep the other direction open (half-close)

    def pause_writing(self) -> None:
        self.feeder.set_full(True)

    def resume_writing(self) -> None:
        self.feeder.set_full(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.relay.lost(self, exc)


class _Pipe:
    """One direction of a relay: ``src`` → ``dst``, shaped by the rules of its stream."""

    __slots__ = (
        "close_after",
        "close_delay",
        "delay",
        "direct",
        "discard",
        "drop",
        "dst",
        "eof",
        "eof_due",
        "eof_sent",
        "full",
        "hold",
        "idle_timer",
        "jitter",
        "last_at",
        "limit",
        "limit_hit",
        "passed",
        "paused",
        "queue",
        "queued",
        "rate",
        "relay",
        "reset_after",
        "reset_timer",
        "slices",
        "src",
        "stamp",
        "timer",
        "tokens",
    )

    def __init__(self, relay: _Relay, src: _End, dst: _End) -> None:
        self.relay = relay
        self.src = src
        self.dst = dst
        self.queue: deque[tuple[float, bytes]] = deque()
        self.queued = 0
        self.delay = self.jitter = self.rate = 0.0
        self.tokens = 0.0
        self.stamp = 0.0
        self.last_at = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.direct = False  # write straight through: nothing to shape, nothing queued
        self.discard = False  # blackholed at accept: drop everything
        self.hold = False  # stalled by a blackhole on an open connection
        self.full = False  # dst's write buffer is full
        self.paused = False  # we paused src's reading
        self.eof = False
        self.eof_sent = False
        self.eof_due: float | None = None  # slow_close: when the held-back FIN goes
        self.close_delay = 0.0  # slow_close
        self.drop = False  # timeout: drop the stream's bytes
        self.close_after = 0.0  # timeout: close after this long without data (0: never)
        self.idle_timer: asyncio.TimerHandle | None = None
        self.reset_after: float | None = None  # reset: this long after the next data
        self.reset_timer: asyncio.TimerHandle | None = None
        self.slices: tuple[int, int, float] | None = None  # slicer: size, variation, delay
        self.limit: int | None = None  # limit_data
        self.passed = 0  # bytes let through while a limit was set
        self.limit_hit = False

    def feed(self, data: bytes) -> None:
        relay = self.relay
        if self.discard:
            return
        if self.reset_after is not None:
            self.start_reset()
            return
        if self.drop:
            self.restart_idle()
            return
        if self.limit is not None:
            room = self.limit - self.passed
            if room <= 0:
                return
            data = data[:room]
            self.passed += len(data)
            self.limit_hit = self.passed >= self.limit
        at = _clock()
        if self.delay or self.jitter:
            at += self.delay + (relay.plane.random() * self.jitter if self.jitter else 0.0)
        at = max(at, self.last_at)  # jitter never reorders the stream
        if self.slices is None:
            self.queue.append((at, data))
        else:
            step = self.slices[2]
            pieces = _slice(data, self.slices[0], self.slices[1])
            for i, piece in enumerate(pieces):
                self.queue.append((at + i * step, piece))
            at += step * (len(pieces) - 1)
        self.last_at = at
        self.queued += len(data)
        if self.timer is None:
            self.pump()
        elif self.queued > _HIGH_WATER:
            self.update_reading()

    def pump(self) -> None:
        """Deliver what is due; schedule the next delivery; keep src paused while backed up."""
        self.timer = None
        dst = self.dst.transport
        queue = self.queue
        loop = self.relay.plane.loop
        if dst is not None and not self.hold and not self.dst.closed:
            now = _clock()
            while queue:
                at, data = queue[0]
                if at > now:
                    self.timer = loop.call_later(at - now, self.pump)
                    break
                if self.rate:
                    burst = max(512.0, self.rate / 20)
                    self.tokens = min(burst, self.tokens + (now - self.stamp) * self.rate)
                    self.stamp = now
                    want = min(float(len(data)), burst)
                    if self.tokens < want:
                        wait = (want - self.tokens) / self.rate
                        self.timer = loop.call_later(wait, self.pump)
                        break
                    n = min(len(data), int(self.tokens))
                    self.tokens -= n
                    if n < len(data):
                        queue[0] = (at, data[n:])
                        data = data[:n]
                    else:
                        queue.popleft()
                else:
                    queue.popleft()
                self.queued -= len(data)
                dst.write(data)
            if not queue and self.limit_hit:
                self.relay.close_both(ErrorKind.OTHER)
                return
            if not queue and self.eof and not self.eof_sent:
                if self.close_delay and self.eof_due is None:
                    self.eof_due = now + self.close_delay
                if self.eof_due is not None and self.eof_due > now:
                    self.timer = loop.call_later(self.eof_due - now, self.pump)
                else:
                    self.eof_sent = True
                    self.relay.half_closed(self)
        self.update_reading()
        self.update_direct()

    def start_reset(self) -> None:
        """The reset fault met data: reset both sides now, or ``reset_after`` from now."""
        if self.reset_timer is not None:
            return
        assert self.reset_after is not None
        if self.reset_after:
            self.reset_timer = self.relay.plane.loop.call_later(self.reset_after, self.relay.reset)
        else:
            self.relay.reset()

    def restart_idle(self) -> None:
        """The timeout fault: close the connection ``close_after`` after the last data."""
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        if self.drop and self.close_after:
            self.idle_timer = self.relay.plane.loop.call_later(
                self.close_after, self.relay.close_both, ErrorKind.TIMEOUT
            )

    def end_of_input(self) -> None:
        self.eof = True
        if self.discard:  # nowhere to pass the FIN on: the conversation is over
            src = self.src.transport
            if src is not None and not src.is_closing():
                src.close()
            return
        if self.timer is None:
            self.pump()

    def set_full(self, full: bool) -> None:
        self.full = full
        self.update_reading()

    def update_reading(self) -> None:
        should = self.full or self.hold or self.queued > _HIGH_WATER
        src = self.src.transport
        if should == self.paused or src is None or src.is_closing():
            return
        self.paused = should
        if should:
            src.pause_reading()
        else:
            src.resume_reading()

    def update_direct(self) -> None:
        self.direct = (
            not self.queue
            and not self.delay
            and not self.jitter
            and not self.rate
            and not self.hold
            and not self.discard
            and not self.eof
            and not self.drop
            and self.reset_after is None
            and self.slices is None
            and self.limit is None
            and self.dst.transport is not None
        )

    def cancel(self) -> None:
        for timer in (self.timer, self.idle_timer, self.reset_timer):
            if timer is not None:
                timer.cancel()
        self.timer = self.idle_timer = self.reset_timer = None


def _slice(data: bytes, size: int, variation: int) -> list[bytes]:
    """``data`` in pieces of about ``size`` ± ``variation`` bytes, halved recursively so that
    no piece tends to be small or large by its place (as Toxiproxy's slicer cuts)."""
    if len(data) - size <= variation:
        return [data]
    mid = len(data) // 2
    if variation:
        mid += random.randrange(-variation, variation)
    return _slice(data[:mid], size, variation) + _slice(data[mid:], size, variation)


class _Relay:
    """One client connection and its upstream connection."""

    __slots__ = (
        "arm",
        "c2u",
        "client",
        "coins",
        "connecting",
        "done",
        "error",
        "fault",
        "fixed_arm",
        "plane",
        "start",
        "t0",
        "u2c",
        "upstream",
    )

    def __init__(self, plane: TcpPlane, arm: int | None = None) -> None:
        self.plane = plane
        self.fixed_arm = arm
        self.client = _End(self)
        self.upstream = _End(self)
        self.c2u = _Pipe(self, self.client, self.upstream)
        self.u2c = _Pipe(self, self.upstream, self.client)
        self.client.pipe = self.upstream.feeder = self.c2u
        self.upstream.pipe = self.client.feeder = self.u2c
        self.arm = 0
        self.coins: dict[int, bool] = {}
        self.fault = 0
        self.error = ErrorKind.OK
        self.done = False
        self.connecting: asyncio.Task[None] | None = None
        self.start = 0.0
        self.t0 = 0.0

    def accepted(self) -> None:
        plane = self.plane
        self.start = time.time()
        self.t0 = time.perf_counter()
        self.arm = plane.arm() if self.fixed_arm is None else self.fixed_arm
        plane.relays.add(self)
        rules = plane.rules_for(self.arm) if len(plane.faults) else []
        if not self.replan(rules, accepting=True):
            return
        self.connecting = plane.loop.create_task(self._connect())

    def replan(self, rules: list[FaultEntry], *, accepting: bool) -> bool:
        """Apply the rules of this connection's arm; False when that refused or closed it."""
        if self.done:
            return False
        rnd = self.plane.random
        stall = False
        shaping: list[Rule] = []
        for entry in rules:
            kind = entry.rule.type
            if kind == "refuse" and not accepting:
                continue  # refusing concerns new connections only
            coin = self.coins.get(entry.seq)
            if coin is None:
                coin = self.coins[entry.seq] = rnd() < entry.probability
                if coin:
                    entry.hits[self.arm] += 1
                    self.fault = 1
            if not coin:
                continue
            if kind == "refuse":
                self.error = ErrorKind.CONNECT
                self.upstream.closed = True
                assert self.client.transport is not None
                reset_transport(self.client.transport)
                return False
            if kind == "blackhole":
                if accepting:
                    self.error = ErrorKind.TIMEOUT
                    self.c2u.discard = self.u2c.discard = True
                    self.upstream.closed = True
                    return False
                stall = True
            else:
                shaping.append(entry.rule)
        for pipe, stream in ((self.c2u, Stream.UPSTREAM), (self.u2c, Stream.DOWNSTREAM)):
            mine = [r for r in shaping if r.stream in (stream, Stream.BOTH)]  # type: ignore[union-attr]
            if not self._shape(pipe, mine, stall):
                return False  # the fault closed the connection (limit_data of 0 bytes ...)
        return True

    def _shape(self, pipe: _Pipe, rules: list[Rule], stall: bool) -> bool:
        """Set one direction's shaping from its rules; False when that closed the connection."""
        delay = jitter = rate = close_delay = 0.0
        drop = False
        close_afters: list[float] = []
        reset_after: float | None = None
        slices: tuple[int, int, float] | None = None
        limit: int | None = None
        for rule in rules:
            if isinstance(rule, LatencyRule):
                delay += rule.delay.seconds
                jitter += rule.jitter.seconds
            elif isinstance(rule, BandwidthRule):
                rate = min(rate, rule.bytes_per_second) if rate else rule.bytes_per_second
            elif isinstance(rule, ResetRule):
                after = rule.after.seconds
                reset_after = after if reset_after is None else min(reset_after, after)
            elif isinstance(rule, SlowCloseRule):
                close_delay = max(close_delay, rule.delay.seconds)
            elif isinstance(rule, TimeoutRule):
                drop = True
                if rule.close_after.seconds:
                    close_afters.append(rule.close_after.seconds)
            elif isinstance(rule, SlicerRule):
                slices = (rule.average_size, rule.size_variation, rule.delay.seconds)
            elif isinstance(rule, LimitDataRule):
                limit = rule.bytes if limit is None else min(limit, rule.bytes)
        if pipe.drop and not drop:  # a timeout that goes closes the connection (as Toxiproxy's)
            self.close_both(ErrorKind.TIMEOUT)
            return False
        close_after = min(close_afters, default=0.0)
        released = pipe.hold and not stall
        pipe.delay, pipe.jitter, pipe.hold = delay, jitter, stall
        pipe.close_delay, pipe.reset_after, pipe.slices = close_delay, reset_after, slices
        if drop != pipe.drop or close_after != pipe.close_after:
            pipe.drop, pipe.close_after = drop, close_after
            pipe.restart_idle()
        pipe.limit = limit
        if limit is not None and pipe.passed >= limit:
            self.close_both(ErrorKind.OTHER)
            return False
        if rate != pipe.rate:
            pipe.rate = rate
            pipe.tokens = max(512.0, rate / 20)
            pipe.stamp = _clock()
        if released or (pipe.queue and pipe.timer is None):
            pipe.pump()
        else:
            pipe.update_reading()
            pipe.update_direct()
        return True

    async def _connect(self) -> None:
        plane = self.plane
        try:
            await asyncio.wait_for(
                plane.loop.create_connection(lambda: self.upstream, plane.host, plane.port),
                plane.timeout,
            )
        except (OSError, TimeoutError):
            self.connecting = None
            self.error = ErrorKind.CONNECT
            self.upstream.closed = True
            if self.client.transport is not None and not self.client.closed:
                reset_transport(self.client.transport)
            return
        self.connecting = None
        if self.done or self.client.closed:
            assert self.upstream.transport is not None
            self.upstream.transport.abort()
            return
        self.c2u.pump()
        self.u2c.update_direct()

    def close_both(self, error: ErrorKind) -> None:
        """A fault ends the connection: close both sides (FIN), dropping what is queued."""
        if self.error == ErrorKind.OK:
            self.error = error
        self._stop_connecting()
        if self.upstream.transport is None:  # never connected: nothing to close there
            self.upstream.closed = True
        for end in (self.client, self.upstream):
            if end.transport is not None and not end.closed and not end.transport.is_closing():
                end.transport.close()

    def _stop_connecting(self) -> None:
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None
            self.upstream.closed = True

    def reset(self) -> None:
        """The reset fault: RST both sides now."""
        self.error = ErrorKind.RESET
        self._stop_connecting()
        for end in (self.client, self.upstream):
            if end.transport is not None and not end.closed:
                reset_transport(end.transport)

    def half_closed(self, pipe: _Pipe) -> None:
        """``pipe`` delivered its end of stream: pass the FIN on, close when both are done."""
        dst = pipe.dst
        if dst.transport is not None and not dst.closed and not dst.transport.is_closing():
            if pipe.src.closed or not dst.transport.can_write_eof():
                dst.transport.close()
            else:
                dst.transport.write_eof()
        other = self.u2c if pipe is self.c2u else self.c2u
        if other.eof_sent:
            for end in (self.client, self.upstream):
                if end.transport is not None and not end.closed:
                    end.transport.close()

    def lost(self, end: _End, exc: Exception | None) -> None:
        other = self.upstream if end is self.client else self.client
        if exc is not None and self.error == ErrorKind.OK:
            self.error = ErrorKind.RESET
        end.feeder.discard = True  # nothing more can reach this side
        end.feeder.direct = False
        if not other.closed and other.transport is not None:
            pipe = end.pipe
            if exc is not None:
                reset_transport(other.transport)  # pass a reset on as a reset
            elif pipe.eof_sent or (not pipe.queue and not pipe.close_delay):
                other.transport.close()
            else:
                pipe.eof = True  # deliver what is queued, then close the other side
                if pipe.timer is None:
                    pipe.pump()
        elif not other.closed and self.connecting is not None:
            self._stop_connecting()
        if end.closed and other.closed:
            self._finish()

    def abort(self) -> None:
        self._stop_connecting()
        for end in (self.client, self.upstream):
            if end.transport is not None and not end.closed:
                end.transport.abort()
        if self.client.transport is None or (self.client.closed and self.upstream.closed):
            self._finish()

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        self.c2u.cancel()
        self.u2c.cancel()
        plane = self.plane
        plane.relays.discard(self)
        latency = time.perf_counter() - self.t0
        plane.recorder.record(self.arm, self.start, latency, 0, self.error, self.fault)
