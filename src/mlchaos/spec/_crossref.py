"""Checks across sections of an experiment: names that must exist, windows that must fit."""

from __future__ import annotations

from collections import Counter

from pydantic import ValidationError

from mlchaos.errors import SpecIssue
from mlchaos.proxy._config import Protocol
from mlchaos.proxy._rules import HTTP_RULES, TCP_RULES, FaultArm, http_problem
from mlchaos.spec._models import AgentFault, Experiment, KillFault, ProxyFault, ProxySpec
from mlchaos.spec._traffic import LiveTraffic

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
        if isinstance(fault, AgentFault):
            for field, selector in zip(("process", "peer"), fault.processes(), strict=False):
                if selector.pick is not None:
                    issues.append(
                        SpecIssue(
                            f"{path}.{field}.pick",
                            f"a {fault.type} fault acts on one process: pick is for kill",
                        )
                    )
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

    issues.extend(_sweep_issues(exp))
    if isinstance(exp.traffic, LiveTraffic):
        issues.extend(_live_issues(exp, exp.traffic, proxies))
    elif exp.schedule is not None and exp.schedule.max_rate is not None:
        issues.append(
            SpecIssue(
                "schedule.max_rate",
                "the current request rate is measured at the edge proxy of live traffic "
                "(traffic.mode: live); replayed traffic has no such measure",
            )
        )
    needs_control = any(
        c.relative_to == "control" or c.arm == "control"
        for c in [*exp.metric_checks, *exp.guardrails]
    )
    for i, c in enumerate(exp.guardrails):
        if c.relative_to == "baseline":
            issues.append(
                SpecIssue(
                    f"guardrails[{i}].relative_to",
                    "a guardrail compares with control: 'baseline' (before the first fault) is "
                    "for the hypothesis",
                )
            )
    baseline = [c for c in exp.metric_checks if c.relative_to == "baseline"]
    if baseline and exp.faults and min(f.start.seconds for f in exp.faults) == 0:
        issues.append(
            SpecIssue(
                "hypothesis",
                f"'{baseline[0].describe()}' compares with the baseline before the first fault, "
                "but a fault starts at 0s: start it later so there is a baseline",
            )
        )
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
    # A preset is a data fault, on http proxies only (its rule is the rewrite it compiles into)
    allowed = HTTP_RULES | {"feast_missing"} if proxy.protocol is Protocol.HTTP else TCP_RULES
    if fault.type in allowed:
        problem = http_problem(fault) if proxy.protocol is Protocol.HTTP else None
        if problem is not None:
            return [SpecIssue(path, problem)]
        return _arm_issues(fault, path, proxy)
    return [
        SpecIssue(
            f"{path}.type",
            f"fault '{fault.type}' is not available on {proxy.protocol.value} proxy "
            f"'{proxy.name}' (available: {', '.join(sorted(allowed))})",
        )
    ]


def _arm_issues(fault: ProxyFault, path: str, proxy: ProxySpec) -> list[SpecIssue]:
    """A fault aimed at one arm must have an arm to find: a TCP connection carries no arm
    header, so only the proxy's own shares (``serve.arms``) give connections an arm."""
    serve = proxy.serve
    if proxy.protocol is not Protocol.TCP or fault.arm is FaultArm.ALL or serve is None:
        return []
    if serve.arms.experiment.fraction > 0 or serve.arms.control.fraction > 0:
        return []
    if fault.arm.value in serve.arm_listen:  # connections to that arm's own listener
        return []
    return [
        SpecIssue(
            f"{path}.arm",
            f"fault '{fault.type}' aims at the {fault.arm.value} arm, but tcp proxy "
            f"'{proxy.name}' gives no connection an arm (connections carry no arm header and "
            "its serve.arms shares are 0%): it would never fire. Use 'arm: all', give the "
            "proxy arm shares, or give the arm its own listener (serve.arm_listen)",
        )
    ]


def _live_issues(
    exp: Experiment, live: LiveTraffic, proxies: dict[str, ProxySpec]
) -> list[SpecIssue]:
    """The edge and the keyed dependencies are HTTP proxies; no fault sits on a TCP proxy."""
    issues = []
    for path, name in [("traffic.edge", live.edge)] + [
        (f"traffic.keys.{name}", name) for name in live.keys
    ]:
        proxy = proxies.get(name)
        if proxy is None:
            known = ", ".join(sorted(proxies)) or "none are defined"
            issues.append(SpecIssue(path, f"no proxy named '{name}' (proxies: {known})"))
        elif proxy.protocol is not Protocol.HTTP:
            issues.append(SpecIssue(path, f"proxy '{name}' is tcp: live cohorts need http"))
    for i, fault in enumerate(exp.faults):
        proxy = proxies.get(getattr(fault, "target", ""))
        if proxy is not None and proxy.protocol is Protocol.TCP:
            issues.append(
                SpecIssue(
                    f"faults[{i}].target",
                    f"proxy '{proxy.name}' is tcp: it cannot tell the cohorts of live traffic "
                    "apart, so its fault would hit every user",
                )
            )
    return issues


def _sweep_issues(exp: Experiment) -> list[SpecIssue]:
    """The swept fault exists, has the field, every value fits it and fits in the traffic."""
    sweep = exp.sweep
    if sweep is None:
        return []
    if sweep.fault >= len(exp.faults):
        return [
            SpecIssue("sweep.fault", f"there is no fault {sweep.fault} (faults: {len(exp.faults)})")
        ]
    fault = exp.faults[sweep.fault]
    if sweep.field not in type(fault).model_fields or sweep.field in ("type", "target"):
        fields = sorted(set(type(fault).model_fields) - {"type", "target"})
        return [
            SpecIssue(
                "sweep.field",
                f"fault {sweep.fault} ({fault.type}) has no field '{sweep.field}' to sweep "
                f"(fields: {', '.join(fields)})",
            )
        ]
    try:
        variants = exp.variants()
    except ValidationError as exc:
        first = exc.errors()[0]
        return [SpecIssue("sweep.values", f"a value does not fit '{sweep.field}': {first['msg']}")]
    issues = []
    for value, variant in variants:
        fault = variant.faults[sweep.fault]
        if fault.end(exp.traffic.duration) > exp.traffic.duration.seconds + 1e-9:
            issues.append(
                SpecIssue(
                    "sweep.values",
                    f"with {sweep.field} = {value} the fault ends after the traffic "
                    f"({exp.traffic.duration}); lengthen traffic.duration",
                )
            )
    if sweep.require is not None and sweep.require not in sweep.values:
        issues.append(SpecIssue("sweep.require", f"{sweep.require!r} is not one of the values"))
    return issues
