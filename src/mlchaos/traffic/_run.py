"""Open-loop replay: send dataset rows at a fixed rate and record one observation per request.

Request *i* is due at ``t0 + i / rate`` on the monotonic clock and is sent then, whether or not
earlier requests have answered, so a slow service cannot slow the load down and hide its own
slowness (no coordinated omission). Latency runs from the *scheduled* start to the end of the
response body. When ``max_in_flight`` requests are already open, a due request is not sent: it
is recorded as dropped (``ErrorKind.OTHER``) and counted in the result.

Cancelling :func:`run_traffic` stops the schedule, cancels the requests in flight and closes
the HTTP session before the cancellation propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlchaos.arms import ARM_HEADER, FAULT_HEADER, Arm, arm_for_key, arm_for_unit
from mlchaos.errors import PreflightError
from mlchaos.jsonpath import ROWS, format_path, locate
from mlchaos.observations import ErrorKind, Observation, ObservationStore, error_cause
from mlchaos.spec._traffic import TrafficConfig
from mlchaos.traffic._dataset import Dataset, load_dataset
from mlchaos.traffic._extract import NO_ANSWER, Answer, AnswerReader, to_class
from mlchaos.traffic._grpc import GrpcInference, grpc_error
from mlchaos.traffic._labels import LabelJoin
from mlchaos.traffic._oip import output_names, row_width
from mlchaos.traffic._requests import RequestBuilder

if TYPE_CHECKING:
    import aiohttp

__all__ = ["TrafficResult", "classify_error", "run_traffic"]

SAMPLES_PER_CAUSE = 3
SAMPLE_CHARS = 300
_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})
_LATE_NOTE_S = 0.05
# Timers of some event loops (uvloop: whole milliseconds) wake a little early; a request this
# close to its due time is sent rather than put back to sleep.
_EARLY_S = 0.0005


@dataclass(frozen=True, slots=True)
class TrafficResult:
    """What the load generator did: counts, the rate it reached and how late it ran."""

    sent: int
    """requests sent"""
    completed: int
    """requests that got a complete HTTP response, whatever its status"""
    failed: int
    """requests sent that got no usable response (timeout, connect, reset, protocol, other)"""
    dropped: int
    """requests due while ``max_in_flight`` were open, therefore not sent"""
    elapsed: float
    """seconds from the first due time until the last request was due (at least the duration)"""
    target_rate: float
    achieved_rate: float
    """requests sent per second of ``elapsed``"""
    max_lateness: float
    """largest delay, in seconds, between a request's due time and its sending"""
    notes: tuple[str, ...] = ()
    samples: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    """per arm, per cause of failure: the first few answers (or client errors), truncated"""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d


async def run_traffic(
    config: TrafficConfig,
    store: ObservationStore,
    *,
    base_dir: str | Path = ".",
    clock: Callable[[], float] = time.time,
) -> TrafficResult:
    """Replay ``config.dataset`` against ``config.target`` for ``config.duration``.

    Appends one observation per due request to ``store`` as it completes. ``base_dir`` resolves
    a relative dataset path; ``clock`` gives the wall time stamped on observations. Row order
    and random arm assignment come from ``config.seed``. Raises ``ConfigError`` before sending
    anything when the dataset or the extraction paths are wrong.
    """
    path = Path(config.dataset)
    if not path.is_absolute():
        path = Path(base_dir) / path
    dataset = load_dataset(path, config)
    replay = _Replay(config, store, dataset, clock)
    return await replay.run()


async def first_request(config: TrafficConfig, *, base_dir: str | Path = ".") -> str:
    """One real request, built from the dataset's first rows the way the run builds them all,
    before anything is injected: PreflightError naming the status and body when it fails, or
    the extraction path (or output tensor) its answer lacks. What it found, on success."""
    import aiohttp  # noqa: PLC0415

    path = Path(config.dataset)
    dataset = load_dataset(path if path.is_absolute() else Path(base_dir) / path, config)
    builder = RequestBuilder.for_config(config, dataset)
    reader = AnswerReader.for_config(config, dataset)
    rows = [r % dataset.rows for r in range(builder.batch)]
    headers = {"content-type": "application/json"}
    headers |= {k: v for k, v in config.headers.items() if k.lower() != ARM_HEADER}
    timeout = config.timeout.seconds
    t0 = _now()
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            contextlib.AsyncExitStack() as stack,
        ):
            grpc = await _grpc_channel(config, stack)
            answer = await _call(
                session, grpc, builder, builder.body(rows, "mlchaos-preflight"), headers, timeout
            )
    except Exception as exc:
        failed = grpc_error(exc)
        if failed is None and not isinstance(exc, aiohttp.ClientError | TimeoutError | OSError):
            raise
        status, kind = failed or (0, classify_error(exc))
        cause = error_cause(status, kind, 0)
        raise PreflightError(
            f"the test request to {builder.url} failed ({cause}): {sample_text(str(exc).encode())}"
        ) from None
    ms = (_now() - t0) * 1000
    status, payload = answer.status, answer.payload
    if not 200 <= status < 300:
        raise PreflightError(
            f"the test request to {builder.url} (the dataset's first row) answered HTTP "
            f"{status}: {sample_text(payload) or '(empty body)'}"
        )
    if not reader.reads_body:
        return f"{builder.url} answered {status} in {ms:.0f} ms"
    document = answer.document
    if document is None:
        try:
            document = json.loads(payload)
        except ValueError:
            raise PreflightError(
                f"the test request to {builder.url} answered {status} but not with JSON, so "
                f"traffic.extract cannot read it: {sample_text(payload)}"
            ) from None
    shown = sample_text(payload or json.dumps(document).encode())
    for name, parsed in reader.paths().items():
        concrete = [0 if p is ROWS else p for p in parsed]
        if next(locate(document, concrete), None) is None:
            raise PreflightError(
                f"traffic.extract.{name}: the path {format_path(parsed)!r} is not in the answer "
                f"to the test request (set it to the right path, or to null to read no {name}): "
                f"{shown}"
            )
    if reader.tensor:
        _check_tensor(config, document, shown)
    return f"{builder.url} answered {status} in {ms:.0f} ms with every extract path present"


def _check_tensor(config: TrafficConfig, document: Any, shown: str) -> None:
    """The output tensor the predictions are read from is in the answer, one value per row
    (or ``extract.index`` picks one)."""
    output, index = config.extract.output, config.extract.index
    width = row_width(document, output)
    if width is None:
        names = ", ".join(output_names(document)) or "none"
        raise PreflightError(
            f"traffic.extract.output: the answer to the test request has no output tensor "
            f"{output or '(any)'} (its outputs: {names}): {shown}"
        )
    if width > 1 and index is None:
        raise PreflightError(
            f"traffic.extract.index: each row of output {output or '(the first)'} holds {width} "
            "values (class probabilities?): set traffic.extract.index to the one that is the "
            f"prediction, e.g. 1 for the positive class: {shown}"
        )
    if index is not None and index >= width:
        raise PreflightError(
            f"traffic.extract.index: {index} is past the {width} values of each row of output "
            f"{output or '(the first)'}: {shown}"
        )


@dataclass(frozen=True, slots=True)
class _Exchange:
    """One request's answer: its status and body (a v2 document, for gRPC), its headers, and
    whether a proxy marked it faulted."""

    status: int
    payload: bytes
    document: Any
    headers: Mapping[str, str]
    fault: bool


async def _grpc_channel(
    config: TrafficConfig, stack: contextlib.AsyncExitStack, target: str | None = None
) -> GrpcInference | None:
    """A channel to ``target`` (default: the traffic's), closed with ``stack``; None for HTTP."""
    request = config.request
    if request.protocol != "v2-grpc":
        return None
    return await stack.enter_async_context(
        GrpcInference(target or config.target, request.model, request.version)
    )


async def _call(
    session: aiohttp.ClientSession,
    grpc: GrpcInference | None,
    builder: RequestBuilder,
    body: Any,
    headers: Mapping[str, str],
    deadline: float,
    url: str | None = None,
) -> _Exchange:
    """Send one request over HTTP (to ``url``, default the builder's) or gRPC; the client's
    exceptions propagate."""
    if grpc is not None:
        document, fault = await grpc.infer(body, headers, deadline)
        return _Exchange(200, b"", document, {}, fault)
    data = json.dumps(body, separators=(",", ":"), default=str).encode()
    async with session.request(builder.method, url or builder.url, data=data, headers=headers) as r:
        payload = await r.read()
        return _Exchange(r.status, payload, None, r.headers, FAULT_HEADER in r.headers)


def classify_error(exc: BaseException) -> ErrorKind:
    """Why a request got no response, from the exception the HTTP client raised."""
    import aiohttp  # noqa: PLC0415

    if isinstance(exc, TimeoutError):
        return ErrorKind.TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ErrorKind.CONNECT
    if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError | BrokenPipeError):
        return ErrorKind.RESET
    if isinstance(exc, OSError) and exc.errno in _RESET_ERRNOS:
        return ErrorKind.RESET
    if isinstance(exc, aiohttp.ClientPayloadError):
        # The body ended early when the peer closed the connection; anything else is malformed.
        return ErrorKind.RESET if "not completed" in str(exc) else ErrorKind.PROTOCOL
    if isinstance(exc, aiohttp.ClientResponseError):
        return ErrorKind.PROTOCOL
    return ErrorKind.OTHER


class _Replay:
    """The state of one replay: schedule, counters, and the per-request coroutine."""

    def __init__(
        self,
        config: TrafficConfig,
        store: ObservationStore,
        dataset: Dataset,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.builder = RequestBuilder.for_config(config, dataset)
        self.reader = AnswerReader.for_config(config, dataset)
        rng = random.Random(config.seed)
        self.order = list(range(dataset.rows))
        rng.shuffle(self.order)
        self.rng = rng
        if config.label is None:
            self.labels = [math.nan] * dataset.rows
        elif self.reader.text_labels:  # class names: compared as text with the predictions
            self.labels = [to_class(v) for v in dataset.column(config.label)]
        else:
            self.labels = dataset.floats(config.label)
        self.keys = dataset.column(config.key) if config.key else None
        self.key_arms: dict[int, Arm | None] = {}
        base = {"content-type": "application/json"}
        base |= {k: v for k, v in config.headers.items() if k.lower() != ARM_HEADER}
        self.headers: dict[Arm | None, dict[str, str]] = {None: base}
        for arm in Arm:
            self.headers[arm] = base | {ARM_HEADER: arm.value}
        self.sent = self.completed = self.dropped = self.in_flight = 0
        self.max_lateness = 0.0
        self.samples: dict[str, dict[str, list[str]]] = {}
        self.join: LabelJoin | None = None
        # Where each arm's requests go: an arm target, or the traffic's target.
        self.urls: dict[Arm | None, str] = {
            arm: self.builder.url.replace(
                config.target, config.arm_targets.get(arm.value, config.target), 1
            )
            for arm in Arm
        }
        self.urls[None] = self.builder.url
        self.grpc: dict[Arm | None, GrpcInference | None] = dict.fromkeys(self.urls)
        self.failures: tuple[type[BaseException], ...] = (TimeoutError, OSError)
        self.timeout = config.timeout.seconds

    def key_of(self, row: int, seq: int) -> str | None:
        """The row's key as text (what chose its arm), or None. The rows of a batched request
        share its arm and its fate: their key is the request, which the statistics cluster on."""
        if self.builder.batch > 1:
            return f"request {seq}"
        key = None if self.keys is None else self.keys[row]
        return None if key is None else _key_text(key)

    def arm(self, row: int) -> Arm | None:
        shares = self.config.arms
        exp, ctrl = shares.experiment.fraction, shares.control.fraction
        if self.keys is None:
            return arm_for_unit(self.rng.random(), exp, ctrl)
        if row not in self.key_arms:
            key = self.keys[row]
            self.key_arms[row] = (
                None if key is None else arm_for_key(_key_text(key), exp, ctrl, shares.salt)
            )
        return self.key_arms[row]

    async def run(self) -> TrafficResult:
        import aiohttp  # noqa: PLC0415

        config = self.config
        self.failures = (aiohttp.ClientError, TimeoutError, OSError)  # the service's failures
        if self.builder.grpc:
            import grpc  # noqa: PLC0415

            self.failures += (grpc.aio.AioRpcError,)
        connector = aiohttp.TCPConnector(limit=config.max_in_flight, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(total=config.timeout.seconds)
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            contextlib.AsyncExitStack() as stack,
        ):
            if config.labels is not None:
                self.join = await stack.enter_async_context(LabelJoin(config.labels, session))
            channels: dict[str, GrpcInference | None] = {}
            for arm, url in self.urls.items():
                if url not in channels:
                    channels[url] = await _grpc_channel(config, stack, url)
                self.grpc[arm] = channels[url]
            async with asyncio.TaskGroup() as tasks:
                elapsed = await self._schedule(session, tasks)
        return self._result(elapsed)

    async def _schedule(self, session: aiohttp.ClientSession, tasks: asyncio.TaskGroup) -> float:
        """Start each request when it is due; return the length of the sending window."""
        rate = self.config.rate.per_second
        duration = self.config.duration.seconds
        batch = self.builder.batch
        size = len(self.order)
        t0 = _now()
        wall0 = self.clock()
        i = 0
        while (offset := i / rate) < duration:
            due = t0 + offset
            await _sleep_until(due)
            rows = [self.order[(i * batch + j) % size] for j in range(batch)]
            arm = self.arm(rows[0])
            if self.in_flight >= self.config.max_in_flight:
                self.dropped += 1
                for row in rows:
                    self.store.append(
                        Observation(
                            arm=arm,
                            start=wall0 + offset,
                            latency=math.nan,
                            error=ErrorKind.OTHER,
                            label=self.labels[row],
                            key=self.key_of(row, i),
                        )
                    )
            else:
                self.in_flight += 1
                tasks.create_task(self._send(session, i, rows, arm, due, wall0 + offset))
            i += 1
        return max(duration, _now() - t0)

    async def _send(
        self,
        session: aiohttp.ClientSession,
        seq: int,
        rows: list[int],
        arm: Arm | None,
        due: float,
        wall_start: float,
    ) -> None:
        sent_at = _now()
        self.max_lateness = max(self.max_lateness, sent_at - due)
        origin = min(due, sent_at)  # never shorter than the request really took
        self.sent += 1
        status = 0
        error = ErrorKind.OK
        fault = False
        payload = b""
        document: Any = None
        headers: Mapping[str, str] = {}
        # Building the request is our code: a bug there is a crash (with its traceback in the
        # run's error), never an error observation in both arms.
        body = self.builder.body(rows, str(seq))
        try:
            exchange = await _call(
                session,
                self.grpc[arm],
                self.builder,
                body,
                self.headers[arm],
                self.timeout,
                self.urls[arm],
            )
            status, payload, fault = exchange.status, exchange.payload, exchange.fault
            document, headers = exchange.document, exchange.headers
            latency = _now() - origin
        except self.failures as exc:
            latency = _now() - origin
            status, error = grpc_error(exc) or (0, classify_error(exc))
            payload = (str(exc) or type(exc).__name__).encode()
        finally:
            self.in_flight -= 1
        cause = error_cause(status, error, fault)
        if cause is not None:
            self._sample(arm, cause, payload)
        answers = [NO_ANSWER] * len(rows)
        labels = [self.labels[row] for row in rows]
        if error is ErrorKind.OK:
            self.completed += 1
            if 200 <= status < 300:
                answers = self._read(document, payload, headers, len(rows))
                if self.join is not None:
                    for j, row in enumerate(rows):
                        labels[j] = await self.join.label(
                            str(seq) if len(rows) == 1 else f"{seq}.{j}",
                            row,
                            None if self.keys is None else self.key_of(row, seq),
                            wall_start,
                        )
        for row, answer, label in zip(rows, answers, labels, strict=True):
            self.store.append(
                Observation(
                    arm=arm,
                    start=wall_start,
                    latency=latency,
                    status=status,
                    error=error,
                    model=answer.model,
                    prediction=answer.prediction,
                    label=label,
                    fault=fault,
                    degradation=answer.degradation,
                    feature_age=answer.feature_age,
                    key=self.key_of(row, seq),
                )
            )

    def _sample(self, arm: Arm | None, cause: str, payload: bytes) -> None:
        kept = self.samples.setdefault("none" if arm is None else arm.value, {}).setdefault(
            cause, []
        )
        if len(kept) < SAMPLES_PER_CAUSE:
            kept.append(sample_text(payload))

    def _read(
        self, document: Any, payload: bytes, headers: Mapping[str, str], rows: int
    ) -> list[Answer]:
        if document is None and self.reader.reads_body:
            try:
                document = json.loads(payload)
            except ValueError:
                return [NO_ANSWER] * rows
        return self.reader.read(document, headers, rows)

    def _result(self, elapsed: float) -> TrafficResult:
        rate = self.config.rate.per_second
        achieved = self.sent / elapsed
        notes: list[str] = [] if self.join is None else self.join.notes()
        if self.dropped:
            notes.append(
                f"{self.dropped} requests were not sent because {self.config.max_in_flight} "
                "were already in flight (traffic.max_in_flight); they are recorded as errors"
            )
        if self.max_lateness > _LATE_NOTE_S:
            notes.append(
                f"requests were sent up to {self.max_lateness * 1000:.0f} ms after they were "
                "due: the load generator could not keep up"
            )
        return TrafficResult(
            sent=self.sent,
            completed=self.completed,
            failed=self.sent - self.completed,
            dropped=self.dropped,
            elapsed=elapsed,
            target_rate=rate,
            achieved_rate=achieved,
            max_lateness=self.max_lateness,
            notes=tuple(notes),
            samples=self.samples,
        )


async def _sleep_until(due: float) -> None:
    """Sleep until the monotonic clock reaches ``due`` (or is within ``_EARLY_S`` of it)."""
    while (delay := due - _now()) > _EARLY_S:  # noqa: ASYNC110 - waiting for a time, not a flag
        await asyncio.sleep(delay)


def _now() -> float:
    """The monotonic clock at full resolution (some event loops' own clocks tick in ms)."""
    return time.monotonic()


def sample_text(payload: bytes, limit: int = SAMPLE_CHARS) -> str:
    """An answer body (or a client error) as a short line for people."""
    text = " ".join(payload.decode("utf-8", errors="replace").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _key_text(value: Any) -> str:
    """A key as text, the way it reads in JSON (``1001``, not ``1001.0``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
