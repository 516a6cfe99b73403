"""A sweep's outcome in words, as the demo's index and the terminal show it."""

from __future__ import annotations

from pathlib import Path

from mlchaos.console import SweepOutcome
from mlchaos.demo._run import _Row, _write_index


def test_no_value_held_reads_none_in_the_demo_index_not_pythons_none(tmp_path: Path) -> None:
    sweep = SweepOutcome("duration", largest_held=None, verdict="failed")
    assert sweep.largest_held_text == "none"
    _write_index(
        tmp_path, "resilient", "sqlite", [_Row("staleness-sweep", "failed", None, sweep=sweep)]
    )
    page = (tmp_path / "index.html").read_text()
    assert "largest duration held: none" in page
    assert "None" not in page
    assert SweepOutcome("duration", largest_held="4s").largest_held_text == "4s"
