"""Run one experiment the way a person does: signals lead to rollback, then the summary.

Shared by ``mlchaos run`` and ``mlchaos demo``: the first SIGINT or SIGTERM cancels the
experiment (which rolls back); one during rollback is acknowledged and waited out. The summary
is rebuilt from the journal, written next to it as ``summary.json`` and printed; the readable
reports asked for (HTML, JUnit XML, Markdown) are written beside it.
"""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlchaos.console._display import RichDisplay, esc
from mlchaos.errors import ConfigError
from mlchaos.journal import Journal, read_journal
from mlchaos.runner import Runner, RunOutcome, new_run_id

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from rich.console import Console

    from mlchaos.proxy import Address
    from mlchaos.report import Summary
    from mlchaos.safety import Admission
    from mlchaos.spec import Experiment

__all__ = ["REPORT_FILES", "Executed", "execute", "write_reports"]


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
    formats: Sequence[str] = (),
    metrics: Address | None = None,
    run_id: str | None = None,
) -> Executed:
    """Run ``exp`` writing ``out_dir/journal.jsonl`` and ``out_dir/summary.json``, and the
    readable reports named in ``formats`` (``html``, ``junit``, ``markdown``) beside them.
    ``run_id``: the run's id (default: a new one)."""
    from mlchaos.report import render_terminal, summarize  # noqa: PLC0415

    unknown = [f for f in formats if f not in REPORT_FILES]
    if unknown:
        raise ValueError(f"unknown report formats {unknown}; there are {sorted(REPORT_FILES)}")

    run_id = run_id or new_run_id()
    journal = Journal(out_dir / "journal.jsonl")
    display = RichDisplay(console)
    runner = Runner(
        exp,
        base_dir=base_dir,
        journal=journal,
        listeners=() if quiet else (display,),
        run_id=run_id,
        admission=admission,
        metrics=metrics,
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
    except asyncio.CancelledError:
        if not interrupted:
            raise  # not ours: the caller's cancellation goes on (the runner rolled back)
        outcome = runner.outcome  # ours (a signal): the runner rolled back and wrote it all
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        display.close()
        if main is not None and interrupted:
            while main.cancelling():  # our cancellation has become a rollback: it is done
                main.uncancel()
    if outcome.verdict == "error" and outcome.error:
        console.print(f"[bold red]could not run the experiment:[/] {esc(outcome.error)}")
        console.print(f"journal: {journal.path}")
        write_reports(out_dir, read_journal(journal.path), formats, console)
        return Executed(outcome, None, interrupted)
    records = read_journal(journal.path)
    summary = summarize(records)
    (out_dir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    render_terminal(summary, console)
    console.print(f"journal: {journal.path}\nsummary: {out_dir / 'summary.json'}")
    write_reports(out_dir, records, formats, console, summary=summary)
    return Executed(outcome, summary, interrupted)


# A readable report's format → its file, written next to the run's summary.json.
REPORT_FILES = {"html": "report.html", "junit": "junit.xml", "markdown": "report.md"}


def write_reports(
    out_dir: Path,
    records: list[dict[str, Any]],
    formats: Sequence[str],
    console: Console,
    *,
    summary: Summary | None = None,
) -> None:
    """Write each report of ``formats`` for the run of ``records`` into ``out_dir``."""
    if not formats:
        return
    from mlchaos import report  # noqa: PLC0415

    try:
        run = (
            report.RunJournal(records, summary)
            if summary is not None
            else report.RunJournal.from_records(records)
        )
    except ConfigError as exc:  # a journal that cannot be summarised has no report
        console.print(f"[yellow]no report written:[/] {esc(str(exc))}")
        return
    renderers = {
        "html": report.render_html,
        "junit": report.render_junit,
        "markdown": report.render_markdown,
    }
    for fmt in dict.fromkeys(formats):
        path = out_dir / REPORT_FILES[fmt]
        path.write_text(renderers[fmt]([run]), encoding="utf-8")
        console.print(f"{fmt} report: {path}")
