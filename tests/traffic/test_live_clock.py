"""Live observations are put on the runner's clock before they meet its fault windows."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mlchaos.observations import ObservationStore
from mlchaos.traffic._live import _Reader

SKEW = 7.5  # the edge's wall clock runs this far behind the runner's


class SkewedEdge:
    """Stands in for an edge proxy on another host whose clock is behind (one host's clocks
    cannot be skewed for a test): answers ``GET /observations`` pages as the proxy does."""

    def __init__(self, starts: list[float]) -> None:
        self.starts = starts

    async def observations(self, after: int, limit: int = 10_000) -> dict[str, Any]:
        fields = ["arm", "start", "latency", "status", "error", "fault", "key"]
        rows = [[1, s, 0.01, 200, 0, 0, "k"] for s in self.starts[after : after + limit]]
        now = time.time() - SKEW
        return {"fields": fields, "rows": rows, "next": len(self.starts), "dropped": 0, "now": now}


@pytest.mark.asyncio
async def test_edge_start_times_are_shifted_onto_the_runners_clock() -> None:
    edge_now = time.time() - SKEW
    store = ObservationStore()
    reader = _Reader(store)
    await reader.read(SkewedEdge([edge_now - 1.0, edge_now - 0.5]))  # type: ignore[arg-type]
    assert reader.offset == pytest.approx(SKEW, abs=0.05)
    runner_now = time.time()
    assert list(store.column("start")) == pytest.approx(
        [runner_now - 1.0, runner_now - 0.5], abs=0.1
    )
