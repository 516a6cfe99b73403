"""Observations of requests, and probes of the system's steady state."""

from mlchaos.observe._probes import ProbeResult, probe, probe_all, reach_target
from mlchaos.observe._store import COLUMNS, ErrorKind, Observation, ObservationStore

__all__ = [
    "COLUMNS",
    "ErrorKind",
    "Observation",
    "ObservationStore",
    "ProbeResult",
    "probe",
    "probe_all",
    "reach_target",
]
