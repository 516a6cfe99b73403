"""What the runner shows while it runs: phases, events and a live per-arm snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

__all__ = ["ArmProgress", "Display", "NullDisplay", "RichDisplay", "Snapshot"]


@dataclass(frozen=True)
class ArmProgress:
    requests: int
    errors: int
    p99_ms: float


@dataclass(frozen=True)
class Snapshot:
    elapsed: float
    total: float
    arms: dict[str, ArmProgress]
    active_faults: list[str] = field(default_factory=list)
    guardrails: dict[str, str] = field(default_factory=dict)


class Display(Protocol):
    def phase(self, name: str) -> None: ...

    def event(self, message: str) -> None: ...

    def tick(self, snapshot: Snapshot) -> None: ...

    def close(self) -> None: ...


class NullDisplay:
    """Shows nothing (tests, --quiet)."""

    def phase(self, name: str) -> None:
        pass

    def event(self, message: str) -> None:
        pass

    def tick(self, snapshot: Snapshot) -> None:
        pass

    def close(self) -> None:
        pass


class RichDisplay:
    """Phase and event lines, and a live table per arm while traffic runs (TTY only)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._live: Live | None = None

    def phase(self, name: str) -> None:
        self._stop_live()
        self._console.print(f"[bold cyan]▶ {name}[/]")

    def event(self, message: str) -> None:
        self._console.print(f"  {message}")

    def tick(self, snapshot: Snapshot) -> None:
        if not self._console.is_terminal:
            return
        from rich.live import Live  # noqa: PLC0415

        if self._live is None:
            self._live = Live(console=self._console, refresh_per_second=4, transient=True)
            self._live.start()
        self._live.update(_render(snapshot))

    def close(self) -> None:
        self._stop_live()

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


# a guardrail's check status, in the words of a kill switch
_GUARD_WORDS = {"held": "ok", "unsure": "watching", "no_data": "waiting", "violated": "TRIPPED"}


def _render(s: Snapshot) -> Table:
    from rich.progress_bar import ProgressBar  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(box=None, padding=(0, 2))
    table.add_column("arm")
    table.add_column("requests", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("error rate", justify="right")
    table.add_column("p99", justify="right")
    for arm, p in s.arms.items():
        rate = f"{100 * p.errors / p.requests:.1f}%" if p.requests else "-"
        table.add_row(arm, str(p.requests), str(p.errors), rate, f"{p.p99_ms:.0f}ms")
    bar = ProgressBar(total=max(s.total, 1e-9), completed=min(s.elapsed, s.total), width=40)
    grid = Table.grid()
    grid.add_row(bar, f"  {s.elapsed:5.1f}s / {s.total:.0f}s")
    grid.add_row(table, "")
    faults = ", ".join(s.active_faults) or "none"
    grid.add_row(f"active faults: {faults}", "")
    if s.guardrails:
        states = ", ".join(f"{k}: {_GUARD_WORDS.get(v, v)}" for k, v in s.guardrails.items())
        grid.add_row(f"guardrails: {states}", "")
    return grid
