"""The journal: typed records, one JSON line each, versioned, readable after a crash, strict
about foreign files and records of the wrong shape."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from mlchaos.errors import ConfigError
from mlchaos.journal import (
    SCHEMA_VERSION,
    Journal,
    ObservationsRecord,
    PhaseRecord,
    RunRecord,
    read_journal,
)
from mlchaos.report import summarize

DATA = Path(__file__).parent / "data"


def header(run_id: str = "r1") -> RunRecord:
    return RunRecord(
        schema_version=SCHEMA_VERSION, run_id=run_id, version="0", base_dir=".", spec={}
    )


def test_records_are_appended_as_json_lines_with_time_kind_and_schema(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl", clock=lambda: 12.5)
    j.write(header())
    j.write(PhaseRecord(phase="preflight", event="start"))
    j.close()
    lines = [json.loads(x) for x in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["run", "phase"]
    assert lines[0] == {
        "t": 12.5,
        "kind": "run",
        "schema": SCHEMA_VERSION,
        "run_id": "r1",
        "version": "0",
        "base_dir": ".",
        "spec": {},
    }


def test_each_record_is_readable_before_the_next_write(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    j.write(header())
    assert read_journal(tmp_path / "j.jsonl")[0]["run_id"] == "r1"  # not yet closed
    j.close()


def test_sync_forces_the_file_to_disk(tmp_path: Path) -> None:
    """A recording fake stands in for os.fsync: a test cannot pull the machine's power."""
    synced: list[int] = []
    j = Journal(tmp_path / "j.jsonl", fsync=synced.append)
    j.write(header())
    assert synced == []  # flushed to the OS per record, forced to disk only on sync
    j.sync()
    assert len(synced) == 1
    j.close()
    assert len(synced) == 2


def test_an_existing_journal_is_never_appended_to(tmp_path: Path) -> None:
    """Two runs in one file would mix their observations in one report."""
    Journal(tmp_path / "j.jsonl").close()
    with pytest.raises(ConfigError, match="already exists"):
        Journal(tmp_path / "j.jsonl")


def test_nan_and_infinity_are_written_as_null(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    j.write(header())
    j.write(ObservationsRecord(models=[], columns={"latency": [1.0, math.nan, math.inf]}))
    j.close()
    assert read_journal(tmp_path / "j.jsonl")[1]["columns"]["latency"] == [1.0, None, None]


def test_a_torn_last_line_from_a_killed_writer_is_skipped(tmp_path: Path) -> None:
    p = tmp_path / "j.jsonl"
    run = json.dumps({"t": 1, **header().model_dump(by_alias=True, exclude={"t"})})
    p.write_text(run + '\n{"t": 2, "kind": "pha')
    assert [r["kind"] for r in read_journal(p)] == ["run"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"t": 1, "kind": "phase"}\n', "not an mlchaos journal"),
        ("garbage\n{}\n", "invalid JSON"),
        ("", "not an mlchaos journal"),
        ("[1, 2]\n", "no 'kind'"),
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


def write_lines(path: Path, *records: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


RUN = {"t": 1, "kind": "run", "schema": SCHEMA_VERSION, "run_id": "r", "version": "0"}
RUN |= {"base_dir": ".", "spec": {}}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"t": 2, "kind": "phase", "phase": "x"}, r":2: record 'phase': event: Field required"),
        (
            {"t": 2, "kind": "observations", "models": [], "columns": "abc"},
            r":2: record 'observations': columns: Input should be a valid dictionary",
        ),
        (
            {"t": 2, "kind": "observations", "models": [], "columns": {"arm": [1], "start": []}},
            "columns of different lengths",
        ),
        (
            {"t": 2, "kind": "observations", "models": [], "columns": {"arm": [1, "x"]}},
            r"record 'observations': columns.arm.1: Input should be a number or null",
        ),
        (
            {"t": 2, "kind": "observations", "models": [], "columns": {"colour": [1]}},
            r"unknown columns \['colour'\]",
        ),
        (
            {"t": 2, "kind": "probe", "phase": "p", "name": "n", "ok": "maybe", "detail": ""},
            r"record 'probe': ok: Input should be a valid boolean",
        ),
        ({"t": 2, "kind": "telemetry"}, "unknown record kind 'telemetry'"),
    ],
)
def test_a_record_of_the_wrong_shape_is_refused_naming_line_and_field(
    tmp_path: Path, record: dict[str, object], message: str
) -> None:
    p = write_lines(tmp_path / "j.jsonl", RUN, record)
    with pytest.raises(ConfigError, match=message):
        read_journal(p)


def test_a_journal_of_a_newer_schema_is_refused_saying_so(tmp_path: Path) -> None:
    p = write_lines(tmp_path / "j.jsonl", RUN | {"schema": SCHEMA_VERSION + 1})
    with pytest.raises(ConfigError, match=f"newer mlchaos \\(journal schema {SCHEMA_VERSION + 1}"):
        read_journal(p)
    p = write_lines(tmp_path / "k.jsonl", RUN | {"schema": "two"})
    with pytest.raises(ConfigError, match="is not a version"):
        read_journal(p)


def test_a_journal_written_by_the_previous_version_is_read_and_summarized(
    tmp_path: Path,
) -> None:
    """``data/schema-1.jsonl`` was written by mlchaos before the typed journal (commit
    62ae2f8, `mlchaos run` of a shortened examples/abort-experiment-arm.yaml): it has no
    schema field and its checks no unit. It reads, and its verdict is rebuilt the same."""
    p = shutil.copy(DATA / "schema-1.jsonl", tmp_path / "journal.jsonl")
    records = read_journal(p)
    assert "schema" not in records[0]
    summary = summarize(records)
    recorded = {r["name"]: r["status"] for r in records if r["kind"] == "check"}
    assert {c["name"]: c["status"] for c in summary.checks} == recorded
    assert summary.verdict == "failed"
    assert not summary.mismatches


@pytest.mark.parametrize("fmt", ["terminal", "html", "junit", "markdown", "json"])
def test_mlchaos_report_meets_a_misshapen_record_with_a_located_error_and_exit_2(
    tmp_path: Path, fmt: str
) -> None:
    """Valid JSON of the wrong shape: one clear line naming file, line and field, no traceback."""
    import subprocess

    from tests.conftest import MLCHAOS

    p = shutil.copy(DATA / "schema-1.jsonl", tmp_path / "journal.jsonl")
    lines = Path(p).read_text().splitlines()
    n = next(i for i, line in enumerate(lines) if '"kind":"observations"' in line)
    record = json.loads(lines[n])
    record["columns"]["latency"] = "fast"  # a string where a list belongs
    lines[n] = json.dumps(record)
    Path(p).write_text("\n".join(lines) + "\n")
    proc = subprocess.run(
        [*MLCHAOS, "report", str(p), "--format", fmt],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"journal.jsonl:{n + 1}: record 'observations': columns.latency:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
