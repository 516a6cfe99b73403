"""``mlchaos run``: run one experiment file with signal handling, journal and summary."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

from rich.console import Console

from mlchaos.errors import EXIT_FAILED
from mlchaos.report import render_terminal, summarize
from mlchaos.runner import Journal, NullDisplay, RichDisplay, Runner, new_run_id, read_journal
from mlchaos.spec import load_experiment

__all__ = ["run_experiment_file"]


async def run_experiment_file(path: Path, *, out: Path | None, quiet: bool) -> int:
    """Run, then print the summary rebuilt from the journal; the exit code is the verdict's."""
    exp = load_experiment(path)
    console = Console(stderr=False)
    run_id = new_run_id()
    out_dir = out or Path("reports") / run_id
    journal = Journal(out_dir / "journal.jsonl")
    display = NullDisplay() if quiet else RichDisplay(console)
    runner = Runner(
        exp, base_dir=path.resolve().parent, journal=journal, display=display, run_id=run_id
    )
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def on_signal(signame: str) -> None:
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
    if outcome.verdict == "error" and outcome.error:
        console.print(f"[bold red]could not run the experiment:[/] {outcome.error}")
        console.print(f"journal: {journal.path}")
        return outcome.exit_code
    summary = summarize(read_journal(journal.path))
    (out_dir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    render_terminal(summary, console)
    console.print(f"journal: {journal.path}\nsummary: {out_dir / 'summary.json'}")
    return outcome.exit_code if outcome.exit_code is not None else EXIT_FAILED
