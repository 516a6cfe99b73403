"""The crash-safe journal: one JSON record per line, appended and flushed as it goes.

Every report is rebuilt from this file alone. Observations are written in columnar batches.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import IO, Any

from mlchaos.errors import ConfigError

__all__ = ["Journal", "read_journal"]

SCHEMA_VERSION = 1


class Journal:
    """Append-only JSON-lines writer; each record gets wall time ``t`` and ``kind``.

    One journal holds one run: an existing file is never appended to (its run would be mixed
    into this one's report); that is a ConfigError naming it.
    """

    def __init__(self, path: Path, *, clock: Any = time.time) -> None:
        self.path = path
        self._clock = clock
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] = path.open("x", encoding="utf-8")
        except FileExistsError:
            raise ConfigError(
                f"the journal {path} already exists (an earlier run's); "
                "choose another output directory or remove it"
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot write the journal {path}: {exc.strerror}") from None

    def write(self, kind: str, **fields: Any) -> None:
        record = {"t": round(self._clock(), 6), "kind": kind, **fields}
        self._file.write(json.dumps(_clean(record), separators=(",", ":")) + "\n")
        self._file.flush()

    def sync(self) -> None:
        """Force the journal to disk (at phase boundaries)."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: write null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def read_journal(path: str | Path) -> list[dict[str, Any]]:
    """All records of a journal; a torn last line (the writer was killed) is skipped."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such journal") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the journal: {exc}") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break  # torn final write
            raise ConfigError(f"{p}:{number}: not a journal record (invalid JSON)") from None
        if not isinstance(record, dict) or "kind" not in record:
            raise ConfigError(f"{p}:{number}: not a journal record")
        records.append(record)
    if not records or records[0].get("kind") != "run":
        raise ConfigError(f"{p}: not an mlchaos journal (first record is not a run header)")
    return records
