"""The proxy's Prometheus metrics, read from its counters when scraped (``GET /metrics``).

Nothing is counted twice: the collector turns the :class:`Recorder`'s per-arm counters and
latency buckets and the fault table's counts into metric families at scrape time, so the data
plane pays nothing per request for them.

=========================================  =========  =====================================
``mlchaos_proxy_requests_total``           counter    requests (tcp: connections) finished,
                                                      by ``proxy``, ``arm``, ``outcome``
                                                      (``ok`` | ``error``)
``mlchaos_proxy_faulted_requests_total``   counter    requests a fault acted on, by arm
``mlchaos_proxy_request_duration_seconds`` histogram  latency, by ``proxy`` and ``arm``
``mlchaos_proxy_faults_active``            gauge      faults active now
``mlchaos_proxy_faults_injected_total``    counter    faults added through the control API
=========================================  =========  =====================================

``arm`` is ``experiment``, ``control`` or ``none`` (traffic in no arm).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate
from typing import TYPE_CHECKING

from mlchaos.proxy._stats import ARM_NAMES, LATENCY_BUCKETS, Recorder

if TYPE_CHECKING:
    from prometheus_client import Metric

    from mlchaos.proxy._faults import FaultTable

__all__ = ["ProxyCollector", "exposition"]


class ProxyCollector:
    """A prometheus-client collector over one proxy's counters."""

    def __init__(self, name: str, recorder: Recorder, faults: FaultTable) -> None:
        self.name = name
        self.recorder = recorder
        self.faults = faults

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (  # noqa: PLC0415
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )
        from prometheus_client.utils import floatToGoString  # noqa: PLC0415

        rec, proxy = self.recorder, self.name
        requests = CounterMetricFamily(
            "mlchaos_proxy_requests",
            "Requests (tcp: connections) the proxy finished, by arm and outcome.",
            labels=["proxy", "arm", "outcome"],
        )
        faulted = CounterMetricFamily(
            "mlchaos_proxy_faulted_requests",
            "Requests (tcp: connections) a fault acted on, by arm.",
            labels=["proxy", "arm"],
        )
        latency = HistogramMetricFamily(
            "mlchaos_proxy_request_duration_seconds",
            "Time from the request's first byte to the end of its answer, by arm.",
            labels=["proxy", "arm"],
        )
        for code, arm in enumerate(ARM_NAMES):
            errors = rec.errors[code]
            requests.add_metric([proxy, arm, "ok"], rec.requests[code] - errors)
            requests.add_metric([proxy, arm, "error"], errors)
            faulted.add_metric([proxy, arm], rec.faults[code])
            cumulative = list(accumulate(rec.latency[code]))
            bounds = [floatToGoString(b) for b in LATENCY_BUCKETS] + ["+Inf"]  # type: ignore[no-untyped-call]
            latency.add_metric(
                [proxy, arm], list(zip(bounds, cumulative, strict=True)), rec.latency_sum[code]
            )
        active = GaugeMetricFamily(
            "mlchaos_proxy_faults_active", "Faults active now.", labels=["proxy"]
        )
        active.add_metric([proxy], len(self.faults))
        injected = CounterMetricFamily(
            "mlchaos_proxy_faults_injected",
            "Faults added through the control API since the proxy started.",
            labels=["proxy"],
        )
        injected.add_metric([proxy], self.faults.injected)
        yield from (requests, faulted, latency, active, injected)


def exposition(collector: ProxyCollector) -> tuple[bytes, str]:
    """The text exposition format (0.0.4, which every Prometheus reads) of ``collector``'s
    metrics, and its content type."""
    from prometheus_client import CollectorRegistry, generate_latest  # noqa: PLC0415

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry), "text/plain; version=0.0.4; charset=utf-8"
