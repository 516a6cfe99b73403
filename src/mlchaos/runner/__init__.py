"""The runner: the phase machine of one experiment, the events it emits, halt and rehearsal.

:class:`Runner` runs one experiment and emits what happens (the journal's records and a few
events only people see) to its listeners; ``rehearse`` proves faults can go in and out without
harm; ``halt`` stops every running experiment.
"""

from mlchaos.runner._clock import Clock, SystemClock
from mlchaos.runner._endpoints import Endpoints, OpenEndpoints, open_endpoints
from mlchaos.runner._events import (
    ArmProgress,
    Event,
    FaultSilent,
    JournalSink,
    Listener,
    MeasuringRate,
    MetricsServing,
    Prepared,
    Progress,
    SampleTooSmall,
    SplitMismatch,
    SteadyStateHeld,
    Waiting,
)
from mlchaos.runner._halt import HaltReport, halt
from mlchaos.runner._rehearse import RehearsalStep, rehearse
from mlchaos.runner._runner import BuildInjector, Runner, RunOutcome, TrafficSource, new_run_id

__all__ = [
    "ArmProgress",
    "BuildInjector",
    "Clock",
    "Endpoints",
    "Event",
    "FaultSilent",
    "HaltReport",
    "JournalSink",
    "Listener",
    "MeasuringRate",
    "MetricsServing",
    "OpenEndpoints",
    "Prepared",
    "Progress",
    "RehearsalStep",
    "RunOutcome",
    "Runner",
    "SampleTooSmall",
    "SplitMismatch",
    "SteadyStateHeld",
    "SystemClock",
    "TrafficSource",
    "Waiting",
    "halt",
    "new_run_id",
    "open_endpoints",
    "rehearse",
]
