"""The public names of each package are pinned, so the API changes only on purpose.

(The proxy, traffic, stats and testing packages pin theirs in their own test folders.)
"""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "mlchaos.analysis": [
        "CheckResult",
        "CheckStatus",
        "evaluate",
        "fault_window_mask",
        "judge_hypothesis",
    ],
    "mlchaos.agent": [
        "AgentClient",
        "AgentServer",
        "PauseTable",
        "UnknownPauseError",
        "serve_agent_forever",
    ],
    "mlchaos.faults": [
        "Injector",
        "KillInjector",
        "PauseInjector",
        "ProcessSelector",
        "ProxyFaultInjector",
        "TargetProcess",
        "resolve_process",
        "resolve_processes",
    ],
    "mlchaos.observe": [
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
    ],
    "mlchaos.report": [
        "IndexEntry",
        "RunJournal",
        "Summary",
        "read_runs",
        "render_html",
        "render_index",
        "render_junit",
        "render_markdown",
        "render_terminal",
        "summarize",
    ],
    "mlchaos.runner": [
        "Display",
        "Executed",
        "HaltReport",
        "Journal",
        "NullDisplay",
        "Registry",
        "RehearsalStep",
        "RichDisplay",
        "RunOutcome",
        "Runner",
        "Snapshot",
        "SweepOutcome",
        "execute",
        "execute_sweep",
        "halt",
        "new_run_id",
        "read_journal",
        "rehearse",
    ],
    "mlchaos.safety": [
        "Admission",
        "Profile",
        "SiteConfig",
        "addresses",
        "admit",
        "cap_violations",
        "fault_targets",
        "is_loopback",
        "load_site",
        "spec_hash",
        "wait_for_window",
    ],
    "mlchaos.spec": [
        "AbortFault",
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
        "ExpectedAlert",
        "Experiment",
        "Fault",
        "FeastMissingFault",
        "HttpAction",
        "HttpProbe",
        "Judge",
        "KillFault",
        "LatencyFault",
        "Metric",
        "MetricCheck",
        "PauseFault",
        "Probe",
        "ProcessSelector",
        "PromqlProbe",
        "ProxyFault",
        "ProxySpec",
        "Recovery",
        "RefuseFault",
        "ResetFault",
        "RewriteFault",
        "RollbackAction",
        "Sweep",
        "Target",
        "TcpProbe",
        "experiment_schema",
        "load_experiment",
        "load_model",
        "parse_text",
        "validate_data",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_are_pinned_sorted_and_importable(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__ == PUBLIC[module]
    assert mod.__all__ == sorted(mod.__all__)
    for name in mod.__all__:
        assert hasattr(mod, name), name
