"""Live traffic: observe real client requests at the edge proxy instead of replaying a dataset.

:func:`run_live` sets the cohorts on every HTTP proxy of the experiment (the edge logs, the
others only assign arms), renews them with the faults' lease, reads the edge's observation log
every ``poll`` into the store, and clears the cohorts when it ends — however it ends. If the
runner dies, the cohorts lapse with their lease like the faults do.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import TYPE_CHECKING, Any

from mlchaos.errors import ExperimentAborted, MlchaosError
from mlchaos.observations import key_code
from mlchaos.traffic._extract import to_degradation, to_model, to_prediction
from mlchaos.traffic._run import TrafficResult

if TYPE_CHECKING:
    from mlchaos.observations import ObservationStore
    from mlchaos.proxy import ControlClient
    from mlchaos.spec._traffic import Extract, LiveTraffic
    from mlchaos.units import Duration

__all__ = ["run_live"]

_CLEAR_TIMEOUT_S = 2.0
_PAGE = 10_000  # observations read per call


async def run_live(
    config: LiveTraffic,
    store: ObservationStore,
    proxies: dict[str, ControlClient],
    *,
    salt: str,
    lease: Duration,
) -> TrafficResult:
    """Observe ``config.duration`` of live traffic; ``proxies`` are the experiment's HTTP
    proxies by name (the edge among them); ``salt`` is used when the spec gives none."""
    from mlchaos.proxy._live import Cohorts  # noqa: PLC0415

    arms = config.arms
    common = {
        "experiment": arms.experiment,
        "control": arms.control,
        "salt": arms.salt or salt,
        "lease": lease,
    }
    edge = proxies[config.edge]
    reader = _Reader(store)
    t0 = time.monotonic()
    try:
        await edge.set_cohorts(
            Cohorts.model_validate(
                {**common, "key": arms.key, "edge": True, "read": _answer_paths(config.extract)}
            )
        )
        for name, client in proxies.items():
            if name != config.edge:
                key = config.keys.get(name)
                await client.set_cohorts(Cohorts.model_validate({**common, "key": key}))
        renew_every = lease.seconds / 3
        renewed = time.monotonic()
        while (left := config.duration.seconds - (time.monotonic() - t0)) > 0:
            await asyncio.sleep(min(config.poll.seconds, left))
            await reader.read(edge)
            if time.monotonic() - renewed >= renew_every:
                renewed = time.monotonic()
                for name, client in proxies.items():
                    try:
                        await client.renew_cohorts(lease)
                    except MlchaosError as exc:
                        raise ExperimentAborted(
                            f"could not renew the cohorts on proxy '{name}': {exc}"
                        ) from None
        with contextlib.suppress(MlchaosError):
            await reader.read(edge)  # what answered in the last moments
    finally:
        await _clear(proxies)
    elapsed = time.monotonic() - t0
    return reader.result(elapsed)


class _Reader:
    """Moves the edge's logged rows into the observation store, on the runner's clock.

    The edge stamps each request's start with its own wall clock, and the runner's fault
    windows are on the runner's: every page says what time the edge has (``now``), and the
    reader shifts start times by the offset measured on the quickest round trip so far (within
    half of it), so that windows and observations are compared on one clock.
    """

    def __init__(self, store: ObservationStore) -> None:
        self.store = store
        self.after: int | None = None  # sequence number to read from; None: the log is new
        self.seen = self.completed = self.lost = 0
        self.offset = 0.0  # runner's wall clock minus the edge's
        self._best_rtt = math.inf

    async def read(self, edge: ControlClient) -> None:
        while True:
            sent = time.time()
            page = await edge.observations(self.after or 0, _PAGE)
            self._measure_offset(sent, time.time(), page.get("now"))
            if self.after is not None:
                self.lost += int(page["dropped"])
            self.after = int(page["next"])
            rows: list[list[Any]] = page["rows"]
            fields: list[str] = page["fields"]
            for row in rows:
                self._add(dict(zip(fields, row, strict=True)))
            if len(rows) < _PAGE:
                return

    def _measure_offset(self, sent: float, answered: float, edge_now: object) -> None:
        rtt = answered - sent
        if isinstance(edge_now, int | float) and rtt < self._best_rtt:
            self._best_rtt = rtt
            self.offset = (sent + answered) / 2 - float(edge_now)

    def _add(self, r: dict[str, Any]) -> None:
        store = self.store
        self.seen += 1
        if r["error"] == 0:
            self.completed += 1
        store.add(
            arm=int(r["arm"]),
            start=float(r["start"]) + self.offset,
            latency=float(r["latency"]),
            status=int(r["status"]),
            error=int(r["error"]),
            fault=int(r["fault"]),
            model=store.model_code(to_model(r.get("model"))),
            prediction=to_prediction(r.get("prediction")),
            degradation=store.degradation_code(to_degradation(r.get("degradation"))),
            feature_age=to_prediction(r.get("feature_age")),
            key=key_code(r.get("key")),
        )

    def result(self, elapsed: float) -> TrafficResult:
        notes = []
        if self.lost:
            notes.append(
                f"{self.lost} observations were dropped from the edge's log before they were read"
            )
        if not self.seen:
            notes.append("the edge saw no cohort request: is traffic reaching it?")
        return TrafficResult(
            sent=self.seen,
            completed=self.completed,
            failed=self.seen - self.completed,
            dropped=0,
            elapsed=elapsed,
            target_rate=0.0,
            achieved_rate=self.seen / elapsed if elapsed > 0 else 0.0,
            max_lateness=0.0,
            notes=tuple(notes),
        )


async def _clear(proxies: dict[str, ControlClient]) -> None:
    """Every proxy back to its own split; one that cannot be reached lets its lease lapse."""
    for client in proxies.values():
        with contextlib.suppress(MlchaosError, TimeoutError):
            async with asyncio.timeout(_CLEAR_TIMEOUT_S):
                await client.clear_cohorts()


def _answer_paths(extract: Extract) -> dict[str, str]:
    """What the edge reads from each answer, by the names the reader interprets."""
    return {name: path for name, path in extract.model_dump().items() if path is not None}
