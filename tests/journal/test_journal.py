"""The journal: one JSON record per line, readable after a crash, strict about foreign files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mlchaos.errors import ConfigError
from mlchaos.journal import Journal, read_journal


def test_records_are_appended_as_json_lines_with_time_and_kind(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl", clock=lambda: 12.5)
    j.write("run", run_id="r1")
    j.write("phase", phase="preflight", event="start")
    j.close()
    lines = (tmp_path / "j.jsonl").read_text().splitlines()
    assert [json.loads(x)["kind"] for x in lines] == ["run", "phase"]
    assert json.loads(lines[0]) == {"t": 12.5, "kind": "run", "run_id": "r1"}


def test_each_record_is_on_disk_before_the_next_write(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    j.write("run", run_id="r1")
    assert read_journal(tmp_path / "j.jsonl")[0]["run_id"] == "r1"  # not yet closed
    j.close()


def test_an_existing_journal_is_never_appended_to(tmp_path: Path) -> None:
    """Two runs in one file would mix their observations in one report."""
    Journal(tmp_path / "j.jsonl").close()
    with pytest.raises(ConfigError, match="already exists"):
        Journal(tmp_path / "j.jsonl")


def test_nan_and_infinity_are_written_as_null(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    j.write("run", values=[1.0, math.nan, math.inf])
    j.close()
    assert read_journal(tmp_path / "j.jsonl")[0]["values"] == [1.0, None, None]


def test_a_torn_last_line_from_a_killed_writer_is_skipped(tmp_path: Path) -> None:
    p = tmp_path / "j.jsonl"
    p.write_text('{"t": 1, "kind": "run"}\n{"t": 2, "kind": "pha')
    assert [r["kind"] for r in read_journal(p)] == ["run"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"t": 1, "kind": "phase"}\n', "not an mlchaos journal"),
        ("garbage\n{}\n", "invalid JSON"),
        ("", "not an mlchaos journal"),
    ],
)
def test_foreign_files_are_refused_with_a_clear_message(
    tmp_path: Path, text: str, message: str
) -> None:
    p = tmp_path / "j.jsonl"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_journal(p)


def test_missing_journal_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such journal"):
        read_journal(tmp_path / "nope.jsonl")
