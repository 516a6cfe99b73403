"""Checks across sections of an experiment: names that must exist, windows that must fit."""

from __future__ import annotations

from collections import Counter

from mlchaos.errors import SpecIssue
from mlchaos.proxy._config import Protocol
from mlchaos.proxy._rules import HTTP_RULES, TCP_RULES
from mlchaos.spec._models import Experiment, KillFault, PauseFault, ProxyFault, ProxySpec

__all__ = ["cross_check"]


def cross_check(exp: Experiment) -> list[SpecIssue]:
    """Every problem that needs more than one section to see."""
    issues: list[SpecIssue] = []
    for section, names in (
        ("targets", [t.name for t in exp.targets]),
        ("proxies", [p.name for p in exp.proxies]),
        ("agents", [a.name for a in exp.agents]),
        ("steady_state", [p.name for p in exp.steady_state]),
        ("rollback", [a.name for a in exp.rollback]),
    ):
        for name, count in Counter(names).items():
            if count > 1:
                issues.append(SpecIssue(section, f"name '{name}' is used {count} times"))

    proxies = {p.name: p for p in exp.proxies}
    agents = {a.name for a in exp.agents}
    traffic_s = exp.traffic.duration.seconds
    for i, fault in enumerate(exp.faults):
        path = f"faults[{i}]"
        if isinstance(fault, PauseFault):
            if fault.target not in agents:
                known = ", ".join(sorted(agents)) or "none are defined"
                issues.append(
                    SpecIssue(
                        f"{path}.target", f"no agent named '{fault.target}' (agents: {known})"
                    )
                )
        elif not isinstance(fault, KillFault):
            issues.extend(_proxy_fault_issues(fault, path, proxies))
        elif fault.start.seconds >= traffic_s:
            issues.append(
                SpecIssue(
                    f"{path}.start",
                    f"the kill starts at {fault.start}, when the traffic ({exp.traffic.duration}) "
                    "is over",
                )
            )
        if fault.end(exp.traffic.duration) > traffic_s + 1e-9:
            issues.append(
                SpecIssue(
                    path,
                    f"the fault ends at {fault.end(exp.traffic.duration):g}s, after the traffic "
                    f"({exp.traffic.duration}); shorten it or lengthen traffic.duration",
                )
            )

    needs_control = any(c.relative_to or c.arm == "control" for c in exp.hypothesis)
    needs_control |= any(c.relative_to or c.arm == "control" for c in exp.guardrails)
    if needs_control and exp.traffic.arms.control.fraction == 0:
        issues.append(
            SpecIssue("traffic.arms.control", "checks compare with control, but its share is 0%")
        )
    if exp.traffic.arms.experiment.fraction == 0 and exp.faults:
        issues.append(SpecIssue("traffic.arms.experiment", "faults are set but the share is 0%"))
    if exp.lease.seconds < 3 * exp.tick.seconds:
        issues.append(SpecIssue("lease", "must be at least three ticks so renewals arrive in time"))
    return issues


def _proxy_fault_issues(
    fault: ProxyFault, path: str, proxies: dict[str, ProxySpec]
) -> list[SpecIssue]:
    proxy = proxies.get(fault.target)
    if proxy is None:
        known = ", ".join(sorted(proxies)) or "none are defined"
        return [SpecIssue(f"{path}.target", f"no proxy named '{fault.target}' (proxies: {known})")]
    allowed = HTTP_RULES if proxy.protocol is Protocol.HTTP else TCP_RULES
    if fault.type in allowed:
        return []
    return [
        SpecIssue(
            f"{path}.type",
            f"fault '{fault.type}' is not available on {proxy.protocol.value} proxy "
            f"'{proxy.name}' (available: {', '.join(sorted(allowed))})",
        )
    ]
