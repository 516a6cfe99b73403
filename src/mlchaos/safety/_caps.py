"""Blast-radius caps: what an experiment may touch under its environment's profile.

Checked before anything runs (no proxy contacted, no fault injected): a spec over a cap is
refused with every cap it passes named.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from mlchaos.proxy._config import is_loopback
from mlchaos.safety._site import Profile
from mlchaos.spec import (
    AgentFault,
    Experiment,
    HttpAction,
    HttpProbe,
    KillFault,
    TcpProbe,
    TrafficConfig,
)

__all__ = ["addresses", "cap_violations", "fault_targets", "is_loopback"]


def fault_targets(exp: Experiment) -> list[str]:
    """The distinct things the faults act on: proxies (by their control API) and processes.

    Two experiments naming the same key act on the same target.
    """
    proxies = {p.name: p for p in exp.proxies}
    keys: list[str] = []
    for fault in exp.faults:
        if isinstance(fault, AgentFault):
            key = " and ".join(p.describe() for p in fault.processes())
        elif isinstance(fault, KillFault):
            key = fault.process.describe()
        else:
            spec = proxies[fault.target]
            if spec.connect is not None:
                key = f"proxy {spec.connect.url.rstrip('/')}"
            else:
                assert spec.serve is not None
                key = f"proxy in front of {spec.serve.upstream}"
        if key not in keys:
            keys.append(key)
    return keys


def cap_violations(exp: Experiment, environment: str, profile: Profile) -> list[str]:
    """Each cap ``exp`` passes, as a sentence naming the cap, the value and the limit."""
    out = []
    share = exp.traffic.arms.experiment
    if share.fraction > profile.max_experiment_share.fraction + 1e-12:
        out.append(
            f"max_experiment_share: the experiment arm is {share} of traffic, over the "
            f"{profile.max_experiment_share} allowed in {environment}"
        )
    targets = fault_targets(exp)
    count = len(targets) + sum(_picked(f) - 1 for f in exp.faults if isinstance(f, KillFault))
    if count > profile.max_targets:
        out.append(
            f"max_targets: the faults affect {count} targets ({', '.join(targets)}), "
            f"over the {profile.max_targets} allowed in {environment}"
        )
    if exp.lease.seconds > profile.max_lease.seconds + 1e-9:
        out.append(
            f"max_lease: the lease is {exp.lease}, over the {profile.max_lease} allowed in "
            f"{environment} (a fault outlives a runner that died by up to its lease)"
        )
    longest = max((v.traffic.duration.seconds for _, v in exp.variants()), default=0.0)
    if longest > profile.max_duration.seconds + 1e-9:
        out.append(
            f"max_duration: the traffic lasts {longest:g}s, over the {profile.max_duration} "
            f"allowed in {environment}"
        )
    if profile.process_targets is not None:
        out += _undeclared_processes(exp, environment, profile.process_targets)
    if profile.loopback_only:
        remote = [a for a in addresses(exp) if not is_loopback(a)]
        if remote:  # on this machine all the same when a namespace of it has that address
            from mlchaos.safety._machine import machine_addresses  # noqa: PLC0415

            local = machine_addresses()
            remote = [a for a in remote if _normal(a) not in local]
        if remote:
            out.append(
                f"loopback_only: {environment} is for services on this machine, but "
                f"{', '.join(sorted(set(remote)))} is not on loopback or in a network "
                "namespace of this machine; set environment: staging or production"
            )
    return out


def _undeclared_processes(exp: Experiment, environment: str, allowed: list[str]) -> list[str]:
    """Process faults outside ``environment``'s declared targets (each process the selector
    matches now, on this machine, must have a command line one ``allowed`` pattern matches)."""
    import psutil  # noqa: PLC0415

    from mlchaos.errors import RunError  # noqa: PLC0415
    from mlchaos.process import resolve_processes  # noqa: PLC0415

    faults = [f for f in exp.faults if isinstance(f, KillFault | AgentFault)]
    if not faults:
        return []
    if not allowed:
        return [
            f"process_targets: {environment} allows no process fault until its site profile "
            "declares the processes it may act on (process_targets: [regex, ...])"
        ]
    patterns = [re.compile(p) for p in allowed]
    out = []
    selectors = [
        selector
        for fault in faults
        for selector in (fault.processes() if isinstance(fault, AgentFault) else (fault.process,))
    ]
    for selector in selectors:
        try:
            found = resolve_processes(selector, every=True)
        except RunError:
            continue  # nothing to act on now: preflight says so
        for target in found:
            try:
                cmdline = " ".join(psutil.Process(target.pid).cmdline())
            except psutil.Error:
                continue
            if not any(p.search(cmdline) for p in patterns):
                out.append(
                    f"process_targets: {selector.describe()} is pid {target.pid} "
                    f"({cmdline[:80]!r}), which {environment}'s profile does not declare"
                )
    return out


def _picked(fault: KillFault) -> int:
    """How many processes a kill acts on: a share is of the processes that match now."""
    from mlchaos.errors import RunError  # noqa: PLC0415
    from mlchaos.process import resolve_processes  # noqa: PLC0415

    if fault.process.pick is None or fault.process.pick == "one":
        return 1
    try:
        return len(resolve_processes(fault.process))
    except RunError:
        return 1  # nothing to act on: preflight says so


def addresses(exp: Experiment) -> list[str]:
    """Every host the experiment would contact or fault (URLs and host:port addresses)."""
    found: list[str] = []
    urls = [t.url for t in exp.targets if t.url] + [p.connect.url for p in exp.proxies if p.connect]
    urls += [a.connect.url for a in exp.agents]
    urls += [p.url for p in exp.steady_state if isinstance(p, HttpProbe)]
    urls += [a.url for a in exp.rollback if isinstance(a, HttpAction)]
    traffic = exp.traffic
    if isinstance(traffic, TrafficConfig):
        urls.append(traffic.target)
        if traffic.labels is not None:
            urls.append(traffic.labels.url)
    found += [urlsplit(u).hostname or u for u in urls]
    hostports = [t.address for t in exp.targets if t.address]
    hostports += [p.address for p in exp.steady_state if isinstance(p, TcpProbe)]
    found += [h.rpartition(":")[0].strip("[]") for h in hostports]
    for p in exp.proxies:
        if p.serve is not None:
            found += [p.serve.listen.host, p.serve.upstream.host]
    return found


def _normal(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host  # a name: never one of the machine's addresses
