"""Observations of requests, probes of the system's steady state, Prometheus' HTTP API."""

from mlchaos.observe._probes import ProbeResult, probe, probe_all, promql, reach_target
from mlchaos.observe._prometheus import PrometheusError, alerts, instant_query
from mlchaos.observe._store import COLUMNS, ErrorKind, Observation, ObservationStore

__all__ = [
    "COLUMNS",
    "ErrorKind",
    "Observation",
    "ObservationStore",
    "ProbeResult",
    "PrometheusError",
    "alerts",
    "instant_query",
    "probe",
    "probe_all",
    "promql",
    "reach_target",
]
