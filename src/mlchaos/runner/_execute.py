"""Run one experiment the way a person does: signals lead to rollback, then the summary.

Shared by ``mlchaos run`` and ``mlchaos demo``: the first SIGINT or SIGTERM cancels the
experiment (which rolls back); one during rollback is acknowledged and waited out. The summary
is rebuilt from the journal, written next to it as ``summary.json`` and printed.
"""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlchaos.runner._display import NullDisplay, RichDisplay
from mlchaos.runner._journal import Journal, read_journal
from mlchaos.runner._runner import Runner, RunOutcome, new_run_id

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from mlchaos.report import Summary
    from mlchaos.safety import Admission
    from mlchaos.spec import Experiment

__all__ = ["Executed", "execute"]


@dataclass(frozen=True)
class Executed:
    """An experiment's outcome, its summary (None when it could not run) and whether the
    operator interrupted it."""

    outcome: RunOutcome
    summary: Summary | None
    interrupted: bool


async def execute(
    exp: Experiment,
    *,
    base_dir: Path,
    out_dir: Path,
    console: Console,
    quiet: bool = False,
    admission: Admission | None = None,
) -> Executed:
    """Run ``exp`` writing ``out_dir/journal.jsonl`` and ``out_dir/summary.json``."""
    from mlchaos.report import render_terminal, summarize  # noqa: PLC0415

    run_id = new_run_id()
    journal = Journal(out_dir / "journal.jsonl")
    display = NullDisplay() if quiet else RichDisplay(console)
    runner = Runner(
        exp,
        base_dir=base_dir,
        journal=journal,
        display=display,
        run_id=run_id,
        admission=admission,
    )
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    interrupted = False

    def on_signal(signame: str) -> None:
        nonlocal interrupted
        interrupted = True
        if runner.rolling_back:
            console.print(f"[yellow]{signame}: rollback is running; waiting for it to finish[/]")
        elif main is not None and not main.cancelling():
            console.print(f"[yellow]{signame}: stopping the experiment and rolling back[/]")
            main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        outcome = await runner.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        display.close()
        if main is not None:
            while main.cancelling():  # the runner turned the cancellation into a rollback
                main.uncancel()
    if outcome.verdict == "error" and outcome.error:
        console.print(f"[bold red]could not run the experiment:[/] {outcome.error}")
        console.print(f"journal: {journal.path}")
        return Executed(outcome, None, interrupted)
    summary = summarize(read_journal(journal.path))
    (out_dir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    render_terminal(summary, console)
    console.print(f"journal: {journal.path}\nsummary: {out_dir / 'summary.json'}")
    return Executed(outcome, summary, interrupted)
