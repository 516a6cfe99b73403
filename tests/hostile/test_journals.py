"""`mlchaos report` on hostile journals: a located error and exit 2, never an internal error."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from mlchaos.journal import SCHEMA_VERSION
from tests.conftest import MLCHAOS

HEADER = {
    "t": 1.0,
    "kind": "run",
    "schema": SCHEMA_VERSION,
    "run_id": "r",
    "version": "0",
    "base_dir": "/",
    "spec": {},
}


def report(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MLCHAOS, "report", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_line_nested_100k_deep_or_of_the_wrong_shape_is_a_located_error(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for name, line in (
        ("deep", deep),
        ("deep-record", '{"kind": "alert", "t": 2, "x": ' + deep + "}"),
        ("shape", json.dumps({"kind": "fault", "t": 2, "event": "removed", "index": "one"})),
        ("list", json.dumps([1, 2, 3])),
    ):
        journal = tmp_path / f"{name}.jsonl"
        journal.write_text(json.dumps(HEADER) + "\n" + line + "\n" + json.dumps(HEADER) + "\n")
        done = report(journal)
        assert done.returncode == 2, (name, done.stderr[-500:])
        assert f"{name}.jsonl:2:" in done.stderr, (name, done.stderr[-500:])
        assert "internal error" not in done.stderr and "Traceback" not in done.stderr
