"""Live mode: cohorts of real traffic, set on a running proxy under a lease, and the edge's log.

A runner in live mode sets the same :class:`Cohorts` (shares and salt) on every proxy of the
experiment through ``PUT /cohorts``: the stable key hash then puts a request in the same arm at
the edge and at every dependency. The proxy in front of the service (``edge: true``) ignores an
arm header sent by clients (a client cannot choose its arm), writes the arm downstream, and
logs one observation per cohort request (status, latency, and the values the configured JSON
paths find in the answer, as they are: what they mean is the reader's business) for the runner
to read with ``GET /observations``. A dependency proxy
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
import time
from collections import deque
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlchaos.arms import ArmKey
from mlchaos.jsonpath import extract, parse_path
from mlchaos.proxy._assign import ArmAssigner
from mlchaos.units import Duration, PositiveDuration, Share

__all__ = ["LOG_FIELDS", "Cohorts", "LiveLog", "LiveState"]

# The fields of one logged observation, in the order of each row of ``GET /observations``; the
# values read from the answer (``Cohorts.read``) follow them, in the order given.
LOG_FIELDS = ("arm", "start", "latency", "status", "error", "fault", "key")


class Cohorts(BaseModel):
    """The body of ``PUT /cohorts``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    experiment: Share
    control: Share
    salt: str = Field("", max_length=256)
    key: ArmKey | None = Field(None, description="where the key is; default: the proxy's own")
    edge: bool = Field(False, description="the proxy in front of the service: log observations")
    read: dict[str, str] = Field(
        default_factory=dict,
        max_length=16,
        description="edge only: name → JSON path of a value to log from each answer",
    )
    lease: PositiveDuration | None = None

    @field_validator("read")
    @classmethod
    def _valid_paths(cls, v: dict[str, str]) -> dict[str, str]:
        for name, path in v.items():
            if name in LOG_FIELDS:
                raise ValueError(f"'{name}' is a field of every observation; name it otherwise")
            try:
                parse_path(path, wildcards=False)
            except ValueError as exc:
                raise ValueError(f"read.{name}: {exc}") from None
        return v

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.experiment.fraction + self.control.fraction > 1.0 + 1e-12:
            raise ValueError(
                f"experiment ({self.experiment}) and control ({self.control}) together exceed 100%"
            )
        return self


class LiveLog:
    """The edge's observations, oldest dropped beyond ``capacity``; read by sequence number."""

    def __init__(self, read: dict[str, str], capacity: int = 200_000) -> None:
        self._rows: deque[tuple[Any, ...]] = deque(maxlen=capacity)
        self.next = 0  # sequence number of the next row
        self.fields = LOG_FIELDS + tuple(read)
        self._paths = tuple(parse_path(p, wildcards=False) for p in read.values())

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
        key_text = None if key is None else key.decode("utf-8", "replace")
        self._rows.append((arm, start, latency, status, error, fault, key_text, *self._read(body)))
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
        page = {"fields": self.fields, "rows": rows, "next": stop, "dropped": start - after}
        return page | {"now": time.time()}  # the clock of the rows' start times

    def _read(self, body: bytes | None) -> tuple[Any, ...]:
        """The value at each path in the answer (None where absent or not JSON)."""
        document = None
        if body and self._paths:
            try:
                document = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                document = None
        return tuple(extract(document, p) for p in self._paths)


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
        self.log = LiveLog(cohorts.read) if cohorts.edge else None
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
