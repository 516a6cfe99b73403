"""The journal's records: one typed model per kind, a discriminated union on ``kind``.

The first record of a journal is the ``run`` header and carries the journal's ``schema``
version. Version 1 (mlchaos before the typed journal) wrote no ``schema`` field and is read as
is: every later field is optional or defaulted. Version 3 judges fault windows by send time
(:func:`mlchaos.journal.judged_horizon`) and journals each fault's hits. A journal of a newer
version is refused.

The runner emits these records to its listeners as they happen (the journal writes them, the
display and the metrics read them); the writer stamps each with the wall time ``t``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlchaos.observations import COLUMNS

__all__ = [
    "SCHEMA_VERSION",
    "AbortRecord",
    "AdmissionRecord",
    "AgentRecord",
    "AlertRecord",
    "CheckRecord",
    "EstimateRecord",
    "FaultRecord",
    "GuardrailRecord",
    "KillSwitchRecord",
    "ObservationsRecord",
    "PhaseRecord",
    "ProbeRecord",
    "ProxyRecord",
    "Record",
    "RecoveryRecord",
    "RehearsalRecord",
    "RehearsalResultRecord",
    "RehearsalStepRecord",
    "RollbackActionRecord",
    "RunRecord",
    "TrafficRateRecord",
    "TrafficRecord",
    "VerdictRecord",
]

SCHEMA_VERSION = 3


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    t: float | None = Field(None, description="wall time the record was written")


class RunRecord(_Record):
    """The header: which run, which mlchaos, the resolved spec, the journal's schema."""

    kind: Literal["run"] = "run"
    schema_version: int = Field(1, alias="schema")
    run_id: str
    version: str
    base_dir: str
    spec: dict[str, Any]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class AdmissionRecord(_Record):
    kind: Literal["admission"] = "admission"
    environment: str
    profile: dict[str, Any]
    site: str | None = None


class PhaseRecord(_Record):
    kind: Literal["phase"] = "phase"
    phase: str
    event: Literal["start", "end"]
    ok: bool | None = None
    seconds: float | None = None
    error: str | None = None


class ProxyRecord(_Record):
    kind: Literal["proxy"] = "proxy"
    name: str
    mode: Literal["serve", "connect"]
    control: str
    listen: str | None = None


class AgentRecord(_Record):
    kind: Literal["agent"] = "agent"
    name: str
    control: str


class ProbeRecord(_Record):
    kind: Literal["probe"] = "probe"
    phase: str
    name: str
    ok: bool
    detail: str
    latency: float | None = None


class TrafficRateRecord(_Record):
    kind: Literal["traffic_rate"] = "traffic_rate"
    rate: float
    limit: float


class FaultRecord(_Record):
    """A fault's life: injected, inject_failed (it may be in place: rollback removes it),
    removed, remove_failed, verified_removed (``ok``). ``at`` bounds its fault window."""

    kind: Literal["fault"] = "fault"
    event: Literal["injected", "inject_failed", "removed", "remove_failed", "verified_removed"]
    index: int
    at: float | None = Field(None, description="wall time the fault went in or out")
    id: str | None = None
    label: str | None = None
    target: str | None = None
    fault: dict[str, Any] | None = None
    ok: bool | None = None
    error: str | None = None
    note: str | None = None
    hits: dict[str, int] | None = Field(
        None, description="on removal: what the fault changed, per arm (faults on traffic)"
    )
    unit: str | None = Field(None, description="what ``hits`` counts: requests or connections")


class TrafficRecord(_Record):
    kind: Literal["traffic"] = "traffic"
    sent: int
    completed: int
    failed: int
    dropped: int
    elapsed: float
    target_rate: float
    achieved_rate: float
    max_lateness: float = 0.0
    notes: list[str] = []
    samples: dict[str, dict[str, list[str]]] = Field(
        {}, description="per arm, per cause of failure: the first few answers, truncated"
    )


class ObservationsRecord(_Record):
    """A columnar batch of observations: known columns of numbers (null for NaN), all of one
    length."""

    kind: Literal["observations"] = "observations"
    models: list[str]
    degradations: list[str] = []
    columns: dict[str, list[int | float | None]]

    @model_validator(mode="after")
    def _known_and_same_length(self) -> Self:
        unknown = sorted(set(self.columns) - set(COLUMNS))
        if unknown:
            raise ValueError(f"unknown columns {unknown}; known: {', '.join(COLUMNS)}")
        lengths = {len(v) for v in self.columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths {sorted(lengths)}")
        return self


class EstimateRecord(BaseModel):
    """A point estimate and its interval (null where not finite)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float | None
    low: float | None
    high: float | None
    n: int
    confidence: float
    count: int | None = None
    design: float | None = Field(None, description="design effect of clustered rows, when > 1")


class _CheckFields(_Record):
    name: str
    status: Literal["held", "violated", "unsure", "no_data"]
    estimate: EstimateRecord | None = None
    bounds: str = ""
    judge: str = "interval"
    detail: str = ""
    unit: Literal["share", "points", "seconds", "ratio"] | None = Field(
        None, description="how the estimate reads; absent in schema 1"
    )


class GuardrailRecord(_CheckFields):
    kind: Literal["guardrail"] = "guardrail"


class CheckRecord(_CheckFields):
    kind: Literal["check"] = "check"


class AbortRecord(_Record):
    kind: Literal["abort"] = "abort"
    reason: str
    evidence: dict[str, Any] = {}


class KillSwitchRecord(_Record):
    kind: Literal["kill_switch"] = "kill_switch"
    trip_to_removed_ms: float


class RollbackActionRecord(_Record):
    kind: Literal["rollback_action"] = "rollback_action"
    name: str
    ok: bool
    detail: str


class RecoveryRecord(_Record):
    kind: Literal["recovery"] = "recovery"
    recovered: bool | None
    seconds: float | None = None
    note: str | None = None
    failing: list[str] = Field(
        [], description="the probes that did not hold at the deadline, with their last answer"
    )


class AlertRecord(_Record):
    kind: Literal["alert"] = "alert"
    name: str
    must_not_fire: bool
    fired_at: float | None = None
    resolved_at: float | None = None
    time_to_detect_s: float | None = None
    time_to_resolve_s: float | None = None
    before_injection: bool = False
    polls: int = 0
    failed_polls: int = 0
    notify_receiver: str | None = Field(None, description="with notify: the receiver expected")
    notified_at: float | None = None
    notify_resolved_at: float | None = None
    time_to_notify_s: float | None = None
    time_to_notify_resolved_s: float | None = None
    notified_elsewhere: list[str] = Field([], description="other receivers notified of it")
    why_not_notified: str | None = Field(None, description="Alertmanager's account, if missing")


class VerdictRecord(_Record):
    kind: Literal["verdict"] = "verdict"
    verdict: Literal["held", "failed", "aborted", "error"]
    exit_code: int
    abort_reason: str | None = None
    recovered: bool | None = None
    recovery_seconds: float | None = None
    error: str | None = None


class RehearsalRecord(_Record):
    kind: Literal["rehearsal"] = "rehearsal"
    schema_version: int = Field(1, alias="schema")
    run_id: str
    spec_hash: str
    spec: dict[str, Any]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class RehearsalStepRecord(_Record):
    kind: Literal["rehearsal_step"] = "rehearsal_step"
    name: str
    ok: bool
    detail: str


class RehearsalResultRecord(_Record):
    kind: Literal["rehearsal_result"] = "rehearsal_result"
    passed: bool
    detail: str
    spec_hash: str


Record = Annotated[
    RunRecord
    | AdmissionRecord
    | PhaseRecord
    | ProxyRecord
    | AgentRecord
    | ProbeRecord
    | TrafficRateRecord
    | FaultRecord
    | TrafficRecord
    | ObservationsRecord
    | GuardrailRecord
    | CheckRecord
    | AbortRecord
    | KillSwitchRecord
    | RollbackActionRecord
    | RecoveryRecord
    | AlertRecord
    | VerdictRecord
    | RehearsalRecord
    | RehearsalStepRecord
    | RehearsalResultRecord,
    Field(discriminator="kind"),
]
