"""What a proxy saw: per-arm counters for ``GET /stats``, and one observation per request.

The :class:`Recorder` is the single exit of every request (http) or connection (tcp): it bumps
the counters and, when the proxy was given an observation store, appends one record to it.
"""

from __future__ import annotations

from bisect import bisect_left

from pydantic import BaseModel, ConfigDict

from mlchaos.arms import ArmCode
from mlchaos.observations import ErrorKind, ObservationStore
from mlchaos.proxy._config import Protocol

__all__ = ["ARM_NAMES", "LATENCY_BUCKETS", "ArmStats", "ProxyStats", "Recorder"]

ARM_NAMES = ("none", "experiment", "control")
_OK = ErrorKind.OK


class ArmStats(BaseModel):
    """Counts for one arm: requests (http) or connections (tcp), errors, faulted ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests: int = 0
    errors: int = 0
    faults: int = 0


class ProxyStats(BaseModel):
    """The body of ``GET /stats``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: Protocol
    arms: dict[str, ArmStats]
    active_faults: int
    open_connections: int
    observations: int | None = None


# Upper bounds (seconds) of the latency histogram's buckets, as Prometheus exports them.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Recorder:
    """Counts every finished request per arm and records it into an optional store.

    An error is a request that got no usable answer (any :class:`ErrorKind` but ``OK``) or an
    answer with a 5xx status. Latencies are counted into :data:`LATENCY_BUCKETS` per arm (the
    last slot is beyond the largest bound), for the Prometheus histogram.
    """

    __slots__ = ("_add", "errors", "faults", "latency", "latency_sum", "requests", "store")

    def __init__(self, store: ObservationStore | None) -> None:
        self.store = store
        self._add = store.add_request if store is not None else None
        self.requests = [0, 0, 0]
        self.errors = [0, 0, 0]
        self.faults = [0, 0, 0]
        self.latency = [[0] * (len(LATENCY_BUCKETS) + 1) for _ in range(3)]
        self.latency_sum = [0.0, 0.0, 0.0]

    def record(
        self, arm: int, start: float, latency: float, status: int, error: int, fault: int
    ) -> None:
        """Count one finished request (the hot path: plain ints, no allocation)."""
        self.requests[arm] += 1
        if error != _OK or status >= 500:
            self.errors[arm] += 1
        if fault:
            self.faults[arm] += 1
        self.latency[arm][bisect_left(LATENCY_BUCKETS, latency)] += 1
        self.latency_sum[arm] += latency
        add = self._add
        if add is not None:
            add(arm, start, latency, status, error, fault)

    def snapshot(self, protocol: Protocol, active_faults: int, open_connections: int) -> ProxyStats:
        arms = {
            ARM_NAMES[code]: ArmStats(
                requests=self.requests[code], errors=self.errors[code], faults=self.faults[code]
            )
            for code in ArmCode
        }
        return ProxyStats(
            protocol=protocol,
            arms=arms,
            active_faults=active_faults,
            open_connections=open_connections,
            observations=None if self.store is None else len(self.store),
        )
