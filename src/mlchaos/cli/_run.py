"""``mlchaos run``: run one experiment file (or a bundled demo experiment, by name)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlchaos.console import execute, execute_sweep, make_console
from mlchaos.errors import EXIT_FAILED, EXIT_OK
from mlchaos.runner import RehearsalStep, new_run_id, rehearse
from mlchaos.spec import load_experiment

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mlchaos.proxy import Address
    from mlchaos.safety import Admission

__all__ = ["rehearse_file", "resolve_experiment", "run_experiment_file"]


def resolve_experiment(path: Path) -> Path:
    """``path`` itself, or the bundled demo experiment of that name when no such file exists."""
    if path.exists() or path.suffix or len(path.parts) != 1:
        return path
    from mlchaos.demo import experiment_path  # noqa: PLC0415

    bundled = experiment_path(path.name)
    return bundled if bundled.exists() else path


async def run_experiment_file(
    path: Path,
    *,
    out: Path | None,
    quiet: bool,
    admission: Admission,
    formats: Sequence[str] = (),
    metrics: Address | None = None,
) -> int:
    """Run, then print the summary rebuilt from the journal; the exit code is the verdict's.
    ``formats`` name the readable reports to write too; ``metrics`` where to serve the
    runner's Prometheus metrics while it runs."""
    path = resolve_experiment(path)
    exp = load_experiment(path)
    run_id = new_run_id()  # the run's id names its folder too
    out_dir = out or Path("reports") / run_id
    base_dir, console = path.resolve().parent, make_console()
    if exp.sweep is not None:
        swept = await execute_sweep(
            exp,
            base_dir=base_dir,
            out_dir=out_dir,
            console=console,
            quiet=quiet,
            admission=admission,
            formats=formats,
            metrics=metrics,
        )
        return swept.exit_code
    done = await execute(
        exp,
        base_dir=base_dir,
        out_dir=out_dir,
        console=console,
        quiet=quiet,
        admission=admission,
        formats=formats,
        metrics=metrics,
        run_id=run_id,
    )
    code = done.outcome.exit_code
    return code if code is not None else EXIT_FAILED


async def rehearse_file(path: Path, *, out: Path | None, admission: Admission) -> int:
    """Rehearse every fault and rollback action of the spec; 0 when every step passed."""
    path = resolve_experiment(path)
    exp = load_experiment(path)
    out_dir = out or Path("reports") / f"rehearsal-{new_run_id()}"
    console = make_console()

    def show(step: RehearsalStep) -> None:
        mark = "[green]ok[/]" if step.ok else "[red]FAILED[/]"
        console.print(f"{mark}  {step.name}: {step.detail}")

    passed, steps = await rehearse(
        exp, base_dir=path.resolve().parent, out_dir=out_dir, admission=admission, on_step=show
    )
    failed = sum(not s.ok for s in steps)
    if passed:
        console.print(f"[bold green]rehearsal passed[/] ({len(steps)} steps)")
    else:
        console.print(f"[bold red]rehearsal failed[/] ({failed} of {len(steps)} steps)")
    console.print(f"journal: {out_dir / 'rehearsal.jsonl'}")
    return EXIT_OK if passed else EXIT_FAILED
