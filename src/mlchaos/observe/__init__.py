"""Probes of steady state and reachability (HTTP, TCP, PromQL), and Prometheus' HTTP API."""

from mlchaos.observe._probes import ProbeResult, probe, probe_all, promql, reach_target
from mlchaos.observe._prometheus import PrometheusError, alerts, instant_query

__all__ = [
    "ProbeResult",
    "PrometheusError",
    "alerts",
    "instant_query",
    "probe",
    "probe_all",
    "promql",
    "reach_target",
]
