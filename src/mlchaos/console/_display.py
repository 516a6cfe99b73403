"""What a person sees while a run goes on: a listener of the runner's events.

Phase and event lines, and a live table per arm while traffic runs (on a terminal only). The
runner knows nothing of this; it emits typed events and this decides how they read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlchaos.journal import (
    AbortRecord,
    FaultRecord,
    KillSwitchRecord,
    PhaseRecord,
    ProxyRecord,
    RecoveryRecord,
    RollbackActionRecord,
)
from mlchaos.runner import (
    FaultSilent,
    MeasuringRate,
    MetricsServing,
    Prepared,
    Progress,
    SampleTooSmall,
    SplitMismatch,
    SteadyStateHeld,
    Waiting,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from mlchaos.runner import Event

__all__ = ["RichDisplay", "event_line"]


class RichDisplay:
    """Prints each event that people read as a line; shows :class:`Progress` live."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._live: Live | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress):
            self._progress(event)
            return
        if isinstance(event, PhaseRecord) and event.event == "start":
            self._stop_live()
            self._console.print(f"[bold cyan]▶ {event.phase}[/]")
            return
        line = event_line(event)
        if line is not None:
            self._console.print(f"  {line}")

    def close(self) -> None:
        self._stop_live()

    def _progress(self, progress: Progress) -> None:
        if not self._console.is_terminal:
            return
        from rich.live import Live  # noqa: PLC0415

        if self._live is None:
            self._live = Live(console=self._console, refresh_per_second=4, transient=True)
            self._live.start()
        self._live.update(_render(progress))

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def esc(text: str) -> str:
    """Text from the run (labels, reasons, answers) made safe inside Rich markup."""
    from rich.markup import escape  # noqa: PLC0415

    return escape(text)


def event_line(event: Event) -> str | None:
    """The line (Rich markup) an event reads as; None for events shown otherwise or not at all."""
    if isinstance(event, ProxyRecord) and event.listen is not None:
        return f"proxy {esc(event.name)}: listening on {esc(str(event.listen))}"
    if isinstance(event, Prepared):
        return f"{event.proxies} proxies, {event.targets} targets, {event.faults} faults ready"
    if isinstance(event, SteadyStateHeld):
        return f"steady state holds ({event.probes} probes)"
    if isinstance(event, FaultRecord):
        return _fault_line(event)
    if isinstance(event, AbortRecord):
        return f"[bold red]aborted:[/] {esc(event.reason)}"
    if isinstance(event, KillSwitchRecord):
        return f"faults removed {event.trip_to_removed_ms:.0f}ms after the guardrail tripped"
    if isinstance(event, RollbackActionRecord):
        return f"rollback {esc(event.name)}: {'ok' if event.ok else 'FAILED'} ({esc(event.detail)})"
    if isinstance(event, RecoveryRecord):
        return _recovery_line(event)
    if isinstance(event, MetricsServing):
        return f"metrics: {esc(event.url)}"
    if isinstance(event, Waiting):
        return event.message
    if isinstance(event, MeasuringRate):
        return f"measuring the request rate at the edge for {event.window}"
    if isinstance(event, SampleTooSmall):
        return f"[bold yellow]warning:[/] {esc(event.text)}"
    if isinstance(event, SplitMismatch):
        total = event.experiment + event.control
        return (
            f"[bold yellow]warning:[/] sample-ratio mismatch: the experiment arm has "
            f"{event.experiment} of {total} {event.unit} ({event.experiment / total:.1%}), "
            f"configured {event.expected:.1%} (does every hop keep the arm header?)"
        )
    if isinstance(event, FaultSilent):
        return (
            f"[bold yellow]warning:[/] {esc(event.label)} has changed nothing while the "
            f"{event.arm} arm sent {event.requests} requests: it is not firing (does every hop "
            "pass the x-mlchaos-arm header on?)"
        )
    return None


def _fault_line(event: FaultRecord) -> str | None:
    label = event.label or f"fault {event.index}"
    if event.event == "injected":
        return f"fault in place: {esc(label)}"
    if event.event == "removed":
        if event.hits is None:
            return f"fault over: {esc(label)}"
        hits = sum(event.hits.values())
        note = " [bold yellow](it never fired)[/]" if hits == 0 else ""
        return f"fault removed: {esc(label)} (hit {hits} {event.unit or 'requests'}){note}"
    if event.event == "inject_failed":
        error = esc(str(event.error))
        return f"[red]could not inject {esc(label)}:[/] {error} (it is removed at rollback)"
    if event.event == "remove_failed":
        return f"[red]could not remove {esc(label)}:[/] {esc(str(event.error))}"
    if event.event == "verified_removed" and not event.ok:
        why = f": {esc(str(event.error))}" if event.error else ""
        return f"[red]fault {event.index} may still be active{why}[/]"
    return None


def _recovery_line(event: RecoveryRecord) -> str:
    if event.recovered:
        if event.note:
            return f"recovery: {esc(str(event.note))}"
        return f"steady state holds again {event.seconds or 0:.2f}s after rollback began"
    failing = "; ".join(event.failing) or "no probe answered"
    return f"[red]steady state did not return ({esc(str(event.note))}):[/] {esc(failing)}"


# a guardrail's check status, in the words of a kill switch
_GUARD_WORDS = {"held": "ok", "unsure": "watching", "no_data": "waiting", "violated": "TRIPPED"}


def _render(s: Progress) -> Table:
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
