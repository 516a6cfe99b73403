"""Live mode: cohorts of real traffic, set on a running proxy under a lease, and the edge's log.

A runner in live mode sets the same :class:`Cohorts` (shares and salt) on every proxy of the
experiment through ``PUT /cohorts``: the stable key hash then puts a request in the same arm at
the edge and at every dependency. The proxy in front of the service (``edge: true``) ignores an
arm header sent by clients (a client cannot choose its arm), writes the arm downstream, and
logs one observation per cohort request (status, latency, and what the answer says by the
configured paths) for the runner to read with ``GET /observations``. A dependency proxy
(``edge: false``) takes the arm from the header the service propagates, else from the key
hash of its own request (e.g. the entity id in a feature lookup); a request with neither is in
no arm: live traffic is never assigned at random.

The cohorts hold for a lease like faults do: when the runner stops renewing, the proxy goes
back to its configured split on its own.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import deque
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlchaos.proxy._assign import ArmAssigner
from mlchaos.proxy._config import ArmKey
from mlchaos.traffic._config import Extract
from mlchaos.traffic._extract import PathPart, extract, parse_path, to_model, to_prediction
from mlchaos.units import Duration, PositiveDuration, Share

__all__ = ["LOG_FIELDS", "Cohorts", "LiveLog", "LiveState"]

# The fields of one logged observation, in the order of each row of ``GET /observations``.
LOG_FIELDS = (
    "arm",
    "start",
    "latency",
    "status",
    "error",
    "fault",
    "model",
    "prediction",
    "degradation",
    "feature_age",
    "key",
)


class Cohorts(BaseModel):
    """The body of ``PUT /cohorts``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    experiment: Share
    control: Share
    salt: str = Field("", max_length=256)
    key: ArmKey | None = Field(None, description="where the key is; default: the proxy's own")
    edge: bool = Field(False, description="the proxy in front of the service: log observations")
    extract: Extract | None = Field(None, description="edge only: what to read from answers")
    lease: PositiveDuration | None = None

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.experiment.fraction + self.control.fraction > 1.0 + 1e-12:
            raise ValueError(
                f"experiment ({self.experiment}) and control ({self.control}) together exceed 100%"
            )
        return self


class LiveLog:
    """The edge's observations, oldest dropped beyond ``capacity``; read by sequence number."""

    def __init__(self, extract_paths: Extract | None, capacity: int = 200_000) -> None:
        self._rows: deque[tuple[Any, ...]] = deque(maxlen=capacity)
        self.next = 0  # sequence number of the next row
        paths = extract_paths or Extract()
        self._paths: tuple[tuple[PathPart, ...] | None, ...] = tuple(
            None if p is None else parse_path(p)
            for p in (paths.model, paths.prediction, paths.degradation, paths.feature_age)
        )

    def add(
        self,
        arm: int,
        start: float,
        latency: float,
        status: int,
        error: int,
        fault: int,
        body: bytes | None,
        key: bytes | None,
    ) -> None:
        model, prediction, degradation, feature_age = self._read(body)
        self._rows.append(
            (
                arm,
                start,
                latency,
                status,
                error,
                fault,
                model,
                prediction,
                degradation,
                feature_age,
                None if key is None else key.decode("utf-8", "replace"),
            )
        )
        self.next += 1

    def read(self, after: int, limit: int) -> dict[str, Any]:
        """Rows with sequence numbers ``>= after`` (at most ``limit``), ``next`` to ask for then,
        and how many asked-for rows were already dropped. NaN goes out as null."""
        first = self.next - len(self._rows)
        start = max(after, first)
        stop = min(self.next, start + limit)
        rows = [
            [None if isinstance(v, float) and math.isnan(v) else v for v in self._rows[i - first]]
            for i in range(start, stop)
        ]
        return {"fields": LOG_FIELDS, "rows": rows, "next": stop, "dropped": start - after}

    def _read(self, body: bytes | None) -> tuple[str | None, float, str | None, float]:
        if not body:
            return None, math.nan, None, math.nan
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None, math.nan, None, math.nan
        model, prediction, degradation, feature_age = (
            None if p is None else extract(document, p) for p in self._paths
        )
        degraded = to_model(degradation)
        return (
            to_model(model),
            to_prediction(prediction),
            None if degraded in (None, "", "none") else degraded,
            to_prediction(feature_age),
        )


class LiveState:
    """The cohorts set on one proxy, their lease, and (at the edge) the observation log."""

    def __init__(self, assigner: ArmAssigner, default_lease: Duration) -> None:
        self._assigner = assigner
        self._default_lease = default_lease
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self.cohorts: Cohorts | None = None
        self.lease = default_lease
        self.log: LiveLog | None = None

    def set(self, cohorts: Cohorts) -> float:
        """Apply ``cohorts`` (replacing any before) for their lease; seconds until it lapses."""
        self.cohorts = cohorts
        self.lease = cohorts.lease or self._default_lease
        self._assigner.set_live(
            cohorts.experiment.fraction,
            cohorts.control.fraction,
            cohorts.salt,
            cohorts.key,
            trust_header=not cohorts.edge,
        )
        # A new log each time: a runner reads its own run's observations from sequence 0.
        self.log = LiveLog(cohorts.extract) if cohorts.edge else None
        return self.renew(None)

    def renew(self, lease: Duration | None) -> float:
        if self.cohorts is None:
            raise LookupError("no cohorts are set on this proxy (or their lease ended)")
        if lease is not None:
            self.lease = lease
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(self.lease.seconds, self.clear)
        return self.lease.seconds

    def clear(self) -> bool:
        """Back to the configured split; the log is dropped. True if cohorts were set."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        was = self.cohorts is not None
        self.cohorts = None
        self.log = None
        self._assigner.reset()
        return was

    def describe(self) -> dict[str, Any]:
        if self.cohorts is None:
            return {"cohorts": None}
        expires = 0.0 if self._timer is None else max(0.0, self._timer.when() - self._loop.time())
        return {
            "cohorts": self.cohorts.model_dump(mode="json", exclude={"lease"}),
            "lease": str(self.lease),
            "expires_in": expires,
            "logged": None if self.log is None else self.log.next,
        }
