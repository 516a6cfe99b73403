"""The experiment file: frozen, typed models of every section.

Fault rules, proxy and traffic settings are the models their own packages define, so a fault
written here means exactly what the proxy's control API means by it; a preset (the Feast
missing-feature fault) compiles into such a rule.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    model_validator,
)

from mlchaos.process import ProcessSelector
from mlchaos.proxy._config import Address, Protocol, ProxyConfig
from mlchaos.proxy._rules import (
    AbortRule,
    BandwidthRule,
    BlackholeRule,
    Edit,
    FaultArm,
    LatencyRule,
    LimitDataRule,
    RefuseRule,
    ResetRule,
    RewriteRule,
    Rule,
    SlicerRule,
    SlowCloseRule,
    TimeoutRule,
)
from mlchaos.spec._checks import Check, MetricCheck, Probe, PromqlProbe, type_or_http
from mlchaos.spec._schedule import Schedule
from mlchaos.spec._traffic import Traffic
from mlchaos.units import Duration, NonNegativeDuration, PositiveDuration, Share

__all__ = [
    "AGENT_FAULTS",
    "AbortFault",
    "AgentFault",
    "AgentSpec",
    "Analysis",
    "BandwidthFault",
    "BlackholeFault",
    "CommandAction",
    "ConnectAgent",
    "ConnectProxy",
    "CpuFault",
    "Experiment",
    "Fault",
    "FeastMissingFault",
    "HttpAction",
    "KillFault",
    "LatencyFault",
    "LimitDataFault",
    "MemoryFault",
    "Notify",
    "PauseFault",
    "ProcessSelector",
    "ProxyFault",
    "ProxySpec",
    "Recovery",
    "RefuseFault",
    "ResetFault",
    "RewriteFault",
    "RollbackAction",
    "SlicerFault",
    "SlowCloseFault",
    "Sweep",
    "Target",
    "TimeoutFault",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(_Model):
    """A part of the system under test; preflight checks that it is reachable."""

    name: str
    url: str | None = Field(None, description="HTTP base URL; preflight GETs url + health")
    health: str = "/"
    address: str | None = Field(None, description="host:port for non-HTTP targets (TCP connect)")

    @model_validator(mode="after")
    def _one_way_to_reach(self) -> Self:
        if (self.url is None) == (self.address is None):
            raise ValueError("give exactly one of 'url' (HTTP) or 'address' (TCP)")
        return self


class ConnectProxy(_Model):
    """A proxy that already runs as its own process (``mlchaos proxy serve``)."""

    url: str = Field(description="control API base URL, e.g. http://127.0.0.1:9901")
    token_file: str
    protocol: Protocol = Protocol.HTTP


class ProxySpec(_Model):
    """A proxy the runner starts itself (``serve``) or one it connects to (``connect``)."""

    name: str
    serve: ProxyConfig | None = None
    connect: ConnectProxy | None = None

    @model_validator(mode="after")
    def _one_mode(self) -> Self:
        if (self.serve is None) == (self.connect is None):
            raise ValueError(
                "give exactly one of 'serve' (start it) or 'connect' (already running)"
            )
        return self

    @property
    def protocol(self) -> Protocol:
        if self.serve is not None:
            return self.serve.protocol
        assert self.connect is not None
        return self.connect.protocol


@cache
def _rule_adapter() -> TypeAdapter[Rule]:
    return TypeAdapter(Rule)


class _Scheduled(BaseModel):
    """When and where a fault is injected; mixed into each rule model."""

    target: str = Field(description="name of the proxy that applies the fault")
    start: NonNegativeDuration = Field(Duration(0.0), description="offset from traffic start")
    duration: PositiveDuration | None = Field(
        None, description="how long it stays; default: to the end"
    )

    def rule(self) -> Rule:
        """The proxy rule this fault installs: the same fields without the schedule."""
        return _rule_adapter().validate_python(
            self.model_dump(exclude=set(_Scheduled.model_fields))
        )

    def end(self, traffic_duration: Duration) -> float:
        """Offset in seconds at which the fault is removed."""
        if self.duration is None:
            return traffic_duration.seconds
        return self.start.seconds + self.duration.seconds


class LatencyFault(_Scheduled, LatencyRule):
    pass


class AbortFault(_Scheduled, AbortRule):
    pass


class ResetFault(_Scheduled, ResetRule):
    pass


class BlackholeFault(_Scheduled, BlackholeRule):
    pass


class BandwidthFault(_Scheduled, BandwidthRule):
    pass


class RefuseFault(_Scheduled, RefuseRule):
    pass


class RewriteFault(_Scheduled, RewriteRule):
    pass


class SlowCloseFault(_Scheduled, SlowCloseRule):
    pass


class TimeoutFault(_Scheduled, TimeoutRule):
    pass


class SlicerFault(_Scheduled, SlicerRule):
    pass


class LimitDataFault(_Scheduled, LimitDataRule):
    pass


EPOCH = "1970-01-01T00:00:00Z"  # the event timestamp Feast gives a value it did not find


class FeastMissingFault(_Scheduled):
    """In a Feast ``/get-online-features`` answer, make ``features`` (default: all but the
    entity keys) missing: every value null with ``status`` (http only) and, for ``NOT_FOUND``,
    Feast's epoch timestamp. Other answers pass unchanged. A feature matches by its name in
    every form Feast emits it: ``f1``, ``view:f1`` or ``view__f1`` (``features`` may name the
    view too: ``view:f1``); a feature the answer lacks is left alone. The join key columns (the
    keys of the request's ``entities``, and the first column) are never touched. When the
    proxy's arm key names a batch's rows (``entities.user_id[*]``), only the rows of the
    faulted arm change.

    The proxy knows nothing of Feast: this preset is compiled into a generic rewrite whose
    edits pick the columns by name (:meth:`rule`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["feast_missing"]
    arm: FaultArm = Field(FaultArm.EXPERIMENT, description="the arm whose traffic is faulted")
    probability: Share = Field(Share(1.0), description="chance that one request is faulted")
    features: list[str] | None = Field(None, description="names, or view:name; default: all")
    status: Literal["NOT_FOUND", "NULL_VALUE", "OUTSIDE_MAX_AGE", "INVALID"] = "NOT_FOUND"

    def rule(self) -> Rule:
        """The rewrite that does it: the values of the selected columns null, their statuses
        ``status`` (timestamps at the epoch for NOT_FOUND), in the rows of the faulted arm."""
        if self.features is None:
            pattern = ".*"
        else:
            names = sorted({re.split(r":|__", f)[-1] for f in self.features})
            pattern = "(?:.*(?::|__))?(?:" + "|".join(re.escape(n) for n in names) + ")"
        where = {
            "names": "metadata.feature_names",
            "pattern": pattern,
            "skip": 1,
            "not_keys_of": "entities",
        }
        edits = [
            Edit(path="results[?].values[#]", set=None, where=where),
            Edit(path="results[?].statuses[#]", set=self.status, where=where),
        ]
        if self.status == "NOT_FOUND":
            edits.append(Edit(path="results[?].event_timestamps[#]", set=EPOCH, where=where))
        return RewriteRule(
            type="rewrite", arm=self.arm, probability=self.probability, response=edits
        )


ProxyFault = (
    LatencyFault
    | AbortFault
    | ResetFault
    | BlackholeFault
    | BandwidthFault
    | RefuseFault
    | RewriteFault
    | SlowCloseFault
    | TimeoutFault
    | SlicerFault
    | LimitDataFault
    | FeastMissingFault
)


class KillFault(_Model):
    """Kill a process with a signal (a crash): it affects every arm. ``restart`` (a command,
    no shell) runs when the fault is removed, at the end of the traffic or on rollback; or a
    rollback action restarts it. Its window lasts from the kill to the end of the traffic."""

    type: Literal["kill"]
    process: ProcessSelector
    signal: Literal["SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGABRT"] = "SIGKILL"
    start: NonNegativeDuration = Field(Duration(0.0), description="offset from traffic start")
    restart: list[str] | None = Field(
        None, min_length=1, description="command that starts the process again (argv)"
    )

    @property
    def target(self) -> str:
        return self.process.describe()

    def end(self, traffic_duration: Duration) -> float:
        return traffic_duration.seconds


class AgentFault(_Model):
    """A fault on a process held by an agent under the experiment's lease: undone on removal,
    on rollback, by the agent itself when the runner stops renewing, and by the agent's guardian
    when the agent dies."""

    target: str = Field(description="name of the agent (section 'agents') that holds it")
    process: ProcessSelector
    start: NonNegativeDuration = Field(Duration(0.0), description="offset from traffic start")
    duration: PositiveDuration | None = Field(
        None, description="how long it stays; default: to the end"
    )

    def end(self, traffic_duration: Duration) -> float:
        if self.duration is None:
            return traffic_duration.seconds
        return self.start.seconds + self.duration.seconds

    def processes(self) -> tuple[ProcessSelector, ...]:
        """The processes it acts on."""
        return (self.process,)


class PauseFault(AgentFault):
    """Pause a process (SIGSTOP); resumed (SIGCONT) when undone."""

    type: Literal["pause"]


class CpuFault(AgentFault):
    """Throttle a process to a share of one core: it is moved into a cgroup with that CPU
    quota (``cpu.cfs_quota_us`` on cgroup v1, ``cpu.max`` on v2), and moved back when undone.
    Needs root on the agent's host. Acts on the process, so on every arm."""

    type: Literal["cpu"]
    share: Share = Field(description="of one core, e.g. 10%; at least 1% (the kernel's least)")

    @model_validator(mode="after")
    def _at_least_one_percent(self) -> Self:
        if self.share.fraction < 0.01:
            raise ValueError(f"share {self.share}: the kernel's smallest CPU quota is 1%")
        return self


class MemoryFault(AgentFault):
    """Cap what a process may allocate: it is moved into a cgroup with that memory limit
    (``memory.limit_in_bytes`` on v1, ``memory.max`` on v2), so allocations past it fail and
    the OOM killer acts; moved back when undone. Memory it held before stays charged where it
    was: the limit caps what it allocates while confined. Needs root. Acts on every arm."""

    type: Literal["memory"]
    limit: ByteSize = Field(description="e.g. 64MiB; at least 1MiB")

    @model_validator(mode="after")
    def _at_least_a_mebibyte(self) -> Self:
        if self.limit < 2**20:
            raise ValueError(f"limit {self.limit.human_readable()}: at least 1MiB")
        return self


class PartitionFault(AgentFault):
    """Cut the network between the network namespaces of ``process`` and ``peer`` with
    policy-routing rules inside them: ``silent`` drops packets (connections time out), ``loud``
    refuses them at once. ``outbound`` cuts the process's packets to the peer, ``inbound`` the
    peer's to it, ``both`` both. Each must have a namespace of its own (not the host's). Needs
    root, ``ip`` and ``nsenter``. Acts on every connection, so on every arm."""

    type: Literal["partition"]
    peer: ProcessSelector = Field(description="the process on the other side")
    direction: Literal["both", "outbound", "inbound"] = "both"
    mode: Literal["silent", "loud"] = "silent"

    def processes(self) -> tuple[ProcessSelector, ...]:
        return (self.process, self.peer)


class GpuMemoryFault(AgentFault):
    """Take device memory on the GPU the process uses (or GPU ``device``) until only
    ``leave_free`` (bytes) or ``leave_free_share`` (of the GPU's memory) stays free: a holder
    process of the agent's allocates it through the CUDA driver API, and ends (freeing it) when
    undone. Needs an NVIDIA GPU and driver on the agent's host, and nvidia-ml-py. The GPU is
    shared, so it acts on every arm."""

    type: Literal["gpu_memory"]
    device: int | None = Field(None, ge=0, description="NVML index; default: the process's GPU")
    leave_free: ByteSize | None = Field(None, description="e.g. 256MiB")
    leave_free_share: Share | None = Field(None, description="e.g. 1%")

    @model_validator(mode="after")
    def _one_amount(self) -> Self:
        if (self.leave_free is None) == (self.leave_free_share is None):
            raise ValueError("give one of leave_free (e.g. 256MiB) and leave_free_share (e.g. 1%)")
        if self.leave_free_share is not None and self.leave_free_share.fraction >= 1:
            raise ValueError("leave_free_share must be under 100%: the fault takes the rest")
        return self


AGENT_FAULTS = (PauseFault, CpuFault, MemoryFault, PartitionFault, GpuMemoryFault)


Fault = Annotated[
    ProxyFault | KillFault | PauseFault | CpuFault | MemoryFault | PartitionFault | GpuMemoryFault,
    Field(discriminator="type"),
]


class ConnectAgent(_Model):
    """An agent that already runs (``mlchaos agent serve``)."""

    url: str = Field(description="control API base URL, e.g. http://127.0.0.1:9902")
    token_file: str


class AgentSpec(_Model):
    """A long-lived mlchaos agent that holds process faults under leases."""

    name: str
    connect: ConnectAgent


class HttpAction(_Model):
    """A rollback step: one HTTP request that must answer with an expected status."""

    type: Literal["http"] = "http"
    name: str
    url: str
    method: Literal["GET", "POST", "PUT", "DELETE"] = "POST"
    body: Any = None
    expect_status: list[int] = [200, 201, 202, 204]
    timeout: PositiveDuration = Duration(10.0)
    token_file: str | None = Field(
        None, description="send 'Authorization: Bearer <the file's content>' (e.g. a control API)"
    )


class CommandAction(_Model):
    """A rollback step: a command (argv list, no shell) that must exit 0 within ``timeout``."""

    type: Literal["command"]
    name: str
    argv: list[str] = Field(min_length=1)
    timeout: PositiveDuration = Duration(30.0)


RollbackAction = Annotated[
    Annotated[HttpAction, Tag("http")] | Annotated[CommandAction, Tag("command")],
    Discriminator(type_or_http),
]


class Recovery(_Model):
    """After rollback, steady state must hold again within ``deadline``."""

    deadline: PositiveDuration = Duration(30.0)
    interval: PositiveDuration = Duration(0.25)


class Analysis(_Model):
    """How observations are judged."""

    confidence: Share = Field(Share(0.95), description="confidence level of every interval")
    threshold: float | None = Field(
        None, description="predicted class = prediction >= threshold; default: exact match"
    )
    window: Literal["faults", "all"] = Field(
        "faults",
        description="judge the hypothesis on requests sent while faults were active (at least "
        "traffic.timeout before each removal), or on all",
    )


class Notify(_Model):
    """What Alertmanager must deliver for an expected alert, after its grouping, routing,
    inhibition and silences, to mlchaos's webhook receiver (``alerts.webhook``)."""

    receiver: str = Field(
        description="the Alertmanager receiver the notification must come through (the "
        "'receiver' of the webhook payload), e.g. ml-platform-pager"
    )
    within: PositiveDuration = Field(
        Duration(60.0), description="the firing notification must arrive within this of injection"
    )
    resolved_within: PositiveDuration = Field(
        Duration(120.0),
        description="the resolved notification must arrive within this of rollback",
    )


class ExpectedAlert(_Model):
    """An alert the faults must raise (and that must clear after rollback), or one that must
    stay silent."""

    name: str = Field(description="the alert's name (its 'alertname' label)")
    labels: dict[str, str] = Field({}, description="labels the alert must carry, e.g. arm")
    fire_within: PositiveDuration = Field(
        Duration(60.0), description="it must fire within this time after the first injection"
    )
    resolve_within: PositiveDuration = Field(
        Duration(120.0), description="it must stop firing within this time after rollback"
    )
    must_not_fire: bool = Field(
        False, description="instead: it must not fire at all (e.g. an alert on the control arm)"
    )
    notify: Notify | None = Field(
        None, description="and Alertmanager must page this receiver (and send the resolution)"
    )

    @model_validator(mode="after")
    def _notify_needs_firing(self) -> Self:
        if self.notify is not None and self.must_not_fire:
            raise ValueError("an alert that must not fire has no notification to wait for")
        return self

    def describe(self) -> str:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return self.name + (f"{{{labels}}}" if labels else "")


class Alerts(_Model):
    """Incident response: the alerts the experiment expects, watched on Prometheus' API."""

    prometheus: str = Field(description="Prometheus base URL; its /api/v1/alerts is polled")
    interval: PositiveDuration = Field(Duration(0.5), description="how often it is polled")
    expect: list[ExpectedAlert] = Field(min_length=1)
    alertmanager: str | None = Field(
        None,
        description="Alertmanager base URL: its /api/v2/alerts says why a notification did "
        "not come (silenced, inhibited, routed elsewhere); needed by 'notify'",
    )
    webhook: Address | None = Field(
        None,
        description="where mlchaos's webhook receiver listens during the run (host:port, the "
        "url of a webhook_configs entry in Alertmanager's configuration); needed by 'notify'",
    )

    @model_validator(mode="after")
    def _notify_needs_alertmanager(self) -> Self:
        if any(e.notify is not None for e in self.expect):
            missing = [k for k in ("alertmanager", "webhook") if getattr(self, k) is None]
            if missing:
                raise ValueError(
                    f"'notify' checks need {' and '.join(missing)}: the webhook receiver that "
                    "Alertmanager notifies, and its API that says why a notification is missing"
                )
        return self


class Sweep(_Model):
    """Run the experiment once per value of one fault's field (pause length, latency, share of
    missing values ...): the report gives each check against the value, and the largest value
    up to which the hypothesis held."""

    fault: int = Field(0, ge=0, description="index of the fault in 'faults' whose field varies")
    field: str = Field(description="the field that varies, e.g. duration, delay, probability")
    values: list[Any] = Field(min_length=2, description="in increasing order of harm")
    require: Any = Field(
        None, description="the hypothesis must hold up to this value (default: the first)"
    )


class Experiment(_Model):
    """One chaos experiment: steady state, hypothesis, faults, guardrails, rollback, recovery."""

    def variants(self) -> list[tuple[Any, Experiment]]:
        """``[(value, experiment)]``: one per sweep value (the fault's field set to it), or
        ``[(None, self)]`` without a sweep. ValueError if a value does not fit the field."""
        if self.sweep is None:
            return [(None, self)]
        index, name = self.sweep.fault, self.sweep.field
        fault = self.faults[index]
        varied = [
            (value, type(fault).model_validate({**fault.model_dump(), name: value}))
            for value in self.sweep.values
        ]
        # A variant that ends its fault earlier ends its traffic as much earlier: every variant
        # keeps the same stretch of traffic after the fault (and the sweep no longer than needed).
        total = self.traffic.duration.seconds
        last_end = max(f.end(self.traffic.duration) for _, f in varied)
        out = []
        for value, f in varied:
            cut = last_end - f.end(self.traffic.duration) if last_end < total + 1e-9 else 0.0
            traffic = self.traffic.model_copy(update={"duration": Duration(total - cut)})
            faults = [f if i == index else g for i, g in enumerate(self.faults)]
            update = {"faults": faults, "sweep": None, "traffic": traffic}
            out.append((value, self.model_copy(update=update)))
        return out

    title: str = Field(min_length=1)
    description: str = ""
    targets: list[Target] = []
    proxies: list[ProxySpec] = []
    agents: list[AgentSpec] = []
    traffic: Traffic
    steady_state: list[Probe] = []
    hypothesis: list[Check] = Field(min_length=1)
    faults: list[Fault] = []
    guardrails: list[MetricCheck] = []
    rollback: list[RollbackAction] = []
    recovery: Recovery = Recovery()
    analysis: Analysis = Analysis()
    sweep: Sweep | None = None
    lease: PositiveDuration = Field(Duration(5.0), description="lease of every injected fault")
    tick: PositiveDuration = Field(Duration(0.1), description="how often guardrails are evaluated")
    environment: str = Field(
        "sandbox",
        min_length=1,
        description="the site profile whose blast-radius caps apply: sandbox (loopback only), "
        "staging, production, or one the site file defines",
    )
    schedule: Schedule | None = Field(
        None, description="when it may run; outside its windows a run is refused (or waits)"
    )
    alerts: Alerts | None = Field(
        None, description="alerts that must fire (and resolve), or stay silent: incident response"
    )

    @property
    def metric_checks(self) -> list[MetricCheck]:
        """The hypothesis checks judged on the observations."""
        return [c for c in self.hypothesis if isinstance(c, MetricCheck)]

    @property
    def promql_checks(self) -> list[PromqlProbe]:
        """The hypothesis checks that are PromQL queries, evaluated as the traffic ends."""
        return [c for c in self.hypothesis if isinstance(c, PromqlProbe)]
