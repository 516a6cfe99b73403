"""The runner's Prometheus metrics, served on loopback while it runs (``mlchaos run --metrics``).

=============================================  =========  ===================================
``mlchaos_runner_requests_total``              counter    requests observed, by ``arm`` and
                                                          ``outcome`` (``ok`` | ``error``)
``mlchaos_runner_faults_active``               gauge      faults injected and not yet removed
``mlchaos_runner_faults_injected_total``       counter    faults injected in this run
``mlchaos_runner_guardrail_trips_total``       counter    guardrail trips, by ``guardrail``
``mlchaos_runner_phase``                       gauge      1 for the phase running now
=============================================  =========  ===================================

Every metric carries ``experiment`` (the title) and ``run_id``. Like the proxy's, the values
are read from the runner's state when scraped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlchaos.journal import FaultRecord, GuardrailRecord, PhaseRecord

if TYPE_CHECKING:
    from aiohttp import web
    from prometheus_client import Metric

    from mlchaos.observations import ObservationStore

__all__ = ["RunnerCollector", "RunnerState", "serve_metrics"]


@dataclass
class RunnerState:
    """What the collector reports, kept by listening to the run's events."""

    experiment: str
    run_id: str
    phase: str = "admission"
    faults_injected: int = 0
    trips: dict[str, int] = field(default_factory=dict)
    active: set[int] = field(default_factory=set)

    @property
    def faults_active(self) -> int:
        return len(self.active)

    def __call__(self, event: object) -> None:
        if isinstance(event, PhaseRecord) and event.event == "start":
            self.phase = event.phase
        elif isinstance(event, FaultRecord):
            if event.event in ("injected", "inject_failed"):  # a failed one may be in place
                self.faults_injected += event.event == "injected"
                self.active.add(event.index)
            elif event.event == "removed":
                self.active.discard(event.index)
        elif isinstance(event, GuardrailRecord) and event.status == "violated":
            self.trips[event.name] = self.trips.get(event.name, 0) + 1


class RunnerCollector:
    """A prometheus-client collector over a runner's state and observation store."""

    def __init__(self, state: RunnerState, store: ObservationStore) -> None:
        self.state = state
        self.store = store

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415

        from mlchaos import stats  # noqa: PLC0415
        from mlchaos.arms import ArmCode  # noqa: PLC0415

        st = self.state
        base = ["experiment", "run_id"]
        who = [st.experiment, st.run_id]
        requests = CounterMetricFamily(
            "mlchaos_runner_requests",
            "Requests the runner observed, by arm and outcome.",
            labels=[*base, "arm", "outcome"],
        )
        arm = self.store.column("arm")
        failed = stats.failed(self.store.column("status"), self.store.column("error"))
        for name, code in (("experiment", ArmCode.EXPERIMENT), ("control", ArmCode.CONTROL)):
            mine = arm == code
            errors = int((failed & mine).sum())
            requests.add_metric([*who, name, "ok"], int(mine.sum()) - errors)
            requests.add_metric([*who, name, "error"], errors)
        active = GaugeMetricFamily(
            "mlchaos_runner_faults_active", "Faults injected and not yet removed.", labels=base
        )
        active.add_metric(who, st.faults_active)
        injected = CounterMetricFamily(
            "mlchaos_runner_faults_injected", "Faults injected in this run.", labels=base
        )
        injected.add_metric(who, st.faults_injected)
        trips = CounterMetricFamily(
            "mlchaos_runner_guardrail_trips",
            "Guardrail trips (each aborts the run).",
            labels=[*base, "guardrail"],
        )
        for guardrail, count in st.trips.items():
            trips.add_metric([*who, guardrail], count)
        phase = GaugeMetricFamily(
            "mlchaos_runner_phase", "1 for the phase running now.", labels=[*base, "phase"]
        )
        phase.add_metric([*who, st.phase], 1)
        yield from (requests, active, injected, trips, phase)


async def serve_metrics(
    host: str, port: int, collector: RunnerCollector
) -> tuple[web.AppRunner, int]:
    """Serve ``GET /metrics`` on ``host:port`` (0: any free port); (runner, bound port)."""
    from aiohttp import web  # noqa: PLC0415
    from prometheus_client import CollectorRegistry, generate_latest  # noqa: PLC0415

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)

    async def metrics(request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(registry))
        response.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
        return response

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, int(runner.addresses[0][1])
