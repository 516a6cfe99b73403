"""Running experiments for a person at a terminal: the live display (a listener of the runner's
events), signals that lead to rollback, the summary printed and written, the readable reports.
Shared by ``mlchaos run`` and ``mlchaos demo``."""

from mlchaos.console._console import make_console
from mlchaos.console._display import RichDisplay, event_line
from mlchaos.console._execute import REPORT_FILES, Executed, execute, write_reports
from mlchaos.console._sweep import SweepOutcome, execute_sweep

__all__ = [
    "REPORT_FILES",
    "Executed",
    "RichDisplay",
    "SweepOutcome",
    "event_line",
    "execute",
    "execute_sweep",
    "make_console",
    "write_reports",
]
