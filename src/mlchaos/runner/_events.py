"""What a run announces as it goes: the journal's records, and a few events only people see.

The phase machine emits each event once to every listener (:data:`Listener`: a callable). The
journal sink writes the records, the live display shows all of it, the metrics collector keeps
its counters; a new output — a webhook, a history index — is one more listener.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel

from mlchaos.journal import PhaseRecord

if TYPE_CHECKING:
    from mlchaos.journal import Journal

__all__ = [
    "ArmProgress",
    "Event",
    "FaultSilent",
    "JournalSink",
    "Listener",
    "MeasuringRate",
    "MetricsServing",
    "Prepared",
    "Progress",
    "SampleTooSmall",
    "SplitMismatch",
    "SteadyStateHeld",
    "Waiting",
]


@dataclass(frozen=True)
class ArmProgress:
    requests: int
    errors: int
    p99_ms: float


@dataclass(frozen=True)
class Progress:
    """A live snapshot while traffic runs (about four a second)."""

    elapsed: float
    total: float
    arms: dict[str, ArmProgress]
    active_faults: list[str] = field(default_factory=list)
    guardrails: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricsServing:
    url: str


@dataclass(frozen=True)
class Waiting:
    """The run waits for its schedule's window to open."""

    message: str


@dataclass(frozen=True)
class MeasuringRate:
    """The preflight measures the request rate at the edge for ``window``."""

    window: str


@dataclass(frozen=True)
class Prepared:
    """Preflight is done: this many proxies, targets and faults are ready."""

    proxies: int
    targets: int
    faults: int


@dataclass(frozen=True)
class SteadyStateHeld:
    probes: int


@dataclass(frozen=True)
class FaultSilent:
    """A fault has changed nothing while ``requests`` of its arm were sent (told once)."""

    label: str
    arm: str
    requests: int


@dataclass(frozen=True)
class SampleTooSmall:
    """Before injection: a check that the run will likely leave unsure (its plan, in words)."""

    text: str


@dataclass(frozen=True)
class SplitMismatch:
    """The arms are not getting their configured split (told once, when a test valid under
    continuous monitoring finds it)."""

    experiment: int
    control: int
    unit: str
    expected: float


# A journal record (a pydantic model of mlchaos.journal) or one of the events above.
Event = (
    BaseModel
    | Progress
    | MetricsServing
    | Waiting
    | MeasuringRate
    | Prepared
    | SteadyStateHeld
    | FaultSilent
    | SplitMismatch
    | SampleTooSmall
)
Listener = Callable[[Event], None]


class JournalSink:
    """Writes every record to the journal; forces it to disk as each phase ends."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def __call__(self, event: Event) -> None:
        if isinstance(event, BaseModel):
            self.journal.write(event)
            if isinstance(event, PhaseRecord) and event.event == "end":
                self.journal.sync()
