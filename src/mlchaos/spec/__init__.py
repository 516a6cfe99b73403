"""The experiment file: typed models, loading with located errors, JSON Schema export."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlchaos.errors import SpecError
from mlchaos.spec._checks import (
    Bound,
    BoundKind,
    Check,
    HttpProbe,
    Judge,
    Metric,
    MetricCheck,
    Probe,
    PromqlProbe,
    TcpProbe,
)
from mlchaos.spec._crossref import cross_check
from mlchaos.spec._load import load_model, parse_text, validate_data
from mlchaos.spec._models import (
    AbortFault,
    AgentFault,
    AgentSpec,
    Alerts,
    Analysis,
    BandwidthFault,
    BlackholeFault,
    CommandAction,
    ConnectAgent,
    ConnectProxy,
    CpuFault,
    ExpectedAlert,
    Experiment,
    Fault,
    FeastMissingFault,
    GpuMemoryFault,
    HttpAction,
    KillFault,
    LatencyFault,
    LimitDataFault,
    MemoryFault,
    Notify,
    PartitionFault,
    PauseFault,
    ProcessSelector,
    ProxyFault,
    ProxySpec,
    Recovery,
    RefuseFault,
    ResetFault,
    RewriteFault,
    RollbackAction,
    SlicerFault,
    SlowCloseFault,
    Sweep,
    Target,
    TimeoutFault,
)
from mlchaos.spec._traffic import (
    Extract,
    JsonRequest,
    LabelSource,
    LiveTraffic,
    RequestShape,
    Traffic,
    TrafficConfig,
    V1Request,
    V2Input,
    V2Request,
)

__all__ = [
    "AbortFault",
    "AgentFault",
    "AgentSpec",
    "Alerts",
    "Analysis",
    "BandwidthFault",
    "BlackholeFault",
    "Bound",
    "BoundKind",
    "Check",
    "CommandAction",
    "ConnectAgent",
    "ConnectProxy",
    "CpuFault",
    "ExpectedAlert",
    "Experiment",
    "Extract",
    "Fault",
    "FeastMissingFault",
    "GpuMemoryFault",
    "HttpAction",
    "HttpProbe",
    "JsonRequest",
    "Judge",
    "KillFault",
    "LabelSource",
    "LatencyFault",
    "LimitDataFault",
    "LiveTraffic",
    "MemoryFault",
    "Metric",
    "MetricCheck",
    "Notify",
    "PartitionFault",
    "PauseFault",
    "Probe",
    "ProcessSelector",
    "PromqlProbe",
    "ProxyFault",
    "ProxySpec",
    "Recovery",
    "RefuseFault",
    "RequestShape",
    "ResetFault",
    "RewriteFault",
    "RollbackAction",
    "SlicerFault",
    "SlowCloseFault",
    "Sweep",
    "Target",
    "TcpProbe",
    "TimeoutFault",
    "Traffic",
    "TrafficConfig",
    "V1Request",
    "V2Input",
    "V2Request",
    "experiment_schema",
    "load_experiment",
    "load_model",
    "parse_text",
    "validate_data",
]


def load_experiment(path: str | Path, *, variables: Mapping[str, str] | None = None) -> Experiment:
    """Load and fully check an experiment file; raise SpecError listing every problem.

    ``${NAME}`` in string values is replaced from ``variables`` (default: the environment).
    """
    exp = load_model(path, Experiment, variables=os.environ if variables is None else variables)
    issues = cross_check(exp)
    if issues:
        raise SpecError(str(path), issues)
    return exp


def experiment_schema() -> dict[str, Any]:
    """JSON Schema of the experiment file, for editors."""
    schema = Experiment.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mlchaos experiment"
    return schema
