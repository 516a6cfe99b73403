"""A sweep: the same experiment once per value of one fault's field, and what held up to where.

Each value runs as an ordinary experiment (its own journal and summary under
``out_dir/NN-value/``); ``sweep.json`` collects every check's estimate against the value and the
largest value up to which the whole hypothesis held. The sweep's verdict holds when the
hypothesis held at every value up to ``sweep.require`` (default: the first value).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlchaos.console._execute import Executed, execute
from mlchaos.errors import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from rich.console import Console

    from mlchaos.proxy import Address
    from mlchaos.safety import Admission
    from mlchaos.spec import Experiment

__all__ = ["SweepOutcome", "execute_sweep"]

_EXIT_INTERRUPTED = 130


@dataclass
class SweepOutcome:
    parameter: str  # the swept field of the fault
    points: list[dict[str, Any]] = field(default_factory=list)
    largest_held: Any = None
    verdict: str = "failed"
    exit_code: int = EXIT_FAILED
    interrupted: bool = False

    @property
    def largest_held_text(self) -> str:
        """The largest value that held, in words: "none" when no value held."""
        return "none" if self.largest_held is None else str(self.largest_held)

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.parameter,
            "points": self.points,
            "largest_held": self.largest_held,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
        }


async def execute_sweep(
    exp: Experiment,
    *,
    base_dir: Path,
    out_dir: Path,
    console: Console,
    quiet: bool = False,
    admission: Admission | None = None,
    formats: Sequence[str] = (),
    metrics: Address | None = None,
) -> SweepOutcome:
    """Run every variant of ``exp`` in order; stop early only when interrupted."""
    assert exp.sweep is not None
    sweep = exp.sweep
    result = SweepOutcome(sweep.field)
    for i, (value, variant) in enumerate(exp.variants()):
        console.rule(f"sweep: {sweep.field} = {value}")
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", str(value))
        done: Executed = await execute(
            variant,
            base_dir=base_dir,
            out_dir=out_dir / f"{i:02d}-{slug}",
            console=console,
            quiet=quiet,
            admission=admission,
            formats=formats,
            metrics=metrics,
        )
        checks = [] if done.summary is None else done.summary.checks
        result.points.append(
            {
                "value": value,
                "verdict": done.outcome.verdict,
                "checks": [
                    {k: c[k] for k in ("name", "status", "estimate", "bounds")} for c in checks
                ],
            }
        )
        if done.interrupted:
            result.interrupted = True
            result.exit_code = _EXIT_INTERRUPTED
            break
    held = 0
    for point in result.points:
        if point["verdict"] != "held":
            break
        held += 1
        result.largest_held = point["value"]
    values = sweep.values
    needed = 1 if sweep.require is None else values.index(sweep.require) + 1
    if not result.interrupted:
        ok = held >= needed
        result.verdict, result.exit_code = ("held", EXIT_OK) if ok else ("failed", EXIT_FAILED)
    (out_dir / "sweep.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    render_sweep(result, console)
    return result


def render_sweep(result: SweepOutcome, console: Console) -> None:
    from rich.table import Table  # noqa: PLC0415

    names = [c["name"] for c in result.points[0]["checks"]] if result.points else []
    table = Table(title=f"sweep over {result.parameter}", title_justify="left")
    for col in (result.parameter, "verdict", *names):
        table.add_column(col)
    for point in result.points:
        cells = {c["name"]: c for c in point["checks"]}
        table.add_row(
            str(point["value"]),
            point["verdict"],
            *(_cell(cells.get(name)) for name in names),
        )
    console.print(table)
    held = result.largest_held_text
    console.print(f"largest {result.parameter} at which the hypothesis held: {held}")


def _cell(check: dict[str, Any] | None) -> str:
    if check is None or not check.get("estimate") or check["estimate"].get("value") is None:
        return "-" if check is None else check["status"]
    est = check["estimate"]

    def num(x: float | None, missing: str) -> str:
        return missing if x is None else f"{x:.3g}"

    low, high = num(est["low"], "-inf"), num(est["high"], "inf")
    return f"{est['value']:.3g} [{low}, {high}] {check['status']}"
