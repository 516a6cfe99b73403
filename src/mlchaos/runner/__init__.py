"""The runner: the phase machine of one experiment, its journal and its live display."""

from mlchaos.runner._display import Display, NullDisplay, RichDisplay, Snapshot
from mlchaos.runner._execute import Executed, execute
from mlchaos.runner._halt import HaltReport, halt
from mlchaos.runner._rehearse import RehearsalStep, rehearse
from mlchaos.runner._runner import Runner, RunOutcome, new_run_id
from mlchaos.runner._sweep import SweepOutcome, execute_sweep

__all__ = [
    "Display",
    "Executed",
    "HaltReport",
    "NullDisplay",
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
    "rehearse",
]
