"""The crash-safe journal file: one JSON record per line, appended and flushed as it goes.

Every report is rebuilt from this file alone. Each line is one of the typed records of
:mod:`mlchaos.journal._records`; reading checks the schema version of the header and the
shape of every record, so a report never meets a record it does not understand.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from mlchaos.errors import ConfigError
from mlchaos.journal._records import SCHEMA_VERSION, Record

__all__ = ["Journal", "read_journal"]

_RECORD: TypeAdapter[Record] = TypeAdapter(Record)


class Journal:
    """Append-only JSON-lines writer; each record is stamped with the wall time ``t``.

    One journal holds one run: an existing file is never appended to (its run would be mixed
    into this one's report); that is a ConfigError naming it. Every record is flushed to the
    operating system as it is written; :meth:`sync` forces the file to disk (``fsync``, at
    phase boundaries), so a crash of the machine loses at most the current phase.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        fsync: Callable[[int], None] = os.fsync,
    ) -> None:
        self.path = path
        self._clock = clock
        self._fsync = fsync
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

    def write(self, record: BaseModel) -> None:
        """Append one record (a model of :data:`~mlchaos.journal.Record`), stamped now."""
        fields = record.model_dump(mode="json", by_alias=True, exclude={"t"})
        line = {"t": round(self._clock(), 6), **fields}
        self._file.write(json.dumps(_clean(line), separators=(",", ":")) + "\n")
        self._file.flush()

    def sync(self) -> None:
        """Force the journal to disk (at phase boundaries)."""
        self._file.flush()
        self._fsync(self._file.fileno())

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
    """All records of a journal, each checked against its kind's model; a torn last line (the
    writer was killed) is skipped. Anything else that is not a record of this schema is a
    ConfigError naming the file, the line and the field."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such journal") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the journal: {exc}") from None
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break  # torn final write
            raise ConfigError(f"{p}:{number}: not a journal record (invalid JSON)") from None
        except RecursionError:
            raise ConfigError(f"{p}:{number}: not a journal record (nested too deeply)") from None
        if not isinstance(record, dict) or "kind" not in record:
            raise ConfigError(f"{p}:{number}: not a journal record (no 'kind')")
        if not records:
            _check_header(p, record)
        try:
            _RECORD.validate_python(record)
        except ValidationError as exc:
            raise ConfigError(f"{p}:{number}: {_located(record, exc)}") from None
        except RecursionError:
            raise ConfigError(f"{p}:{number}: not a journal record (nested too deeply)") from None
        records.append(record)
    if not records:
        raise ConfigError(f"{p}: not an mlchaos journal (it is empty)")
    return records


def _check_header(p: Path, record: dict[str, Any]) -> None:
    if record.get("kind") != "run":
        raise ConfigError(f"{p}: not an mlchaos journal (first record is not a run header)")
    schema = record.get("schema", 1)
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise ConfigError(f"{p}:1: the header's schema version {schema!r} is not a version")
    if schema > SCHEMA_VERSION:
        raise ConfigError(
            f"{p}: written by a newer mlchaos (journal schema {schema}; this mlchaos reads "
            f"schemas 1 to {SCHEMA_VERSION}): read it with that version or upgrade"
        )


def _located(record: dict[str, Any], exc: ValidationError) -> str:
    """``record 'probe': ok: Input should be a valid boolean`` for the first problem."""
    kind = record.get("kind")
    first = exc.errors(include_url=False)[0]
    loc = [str(part) for part in first["loc"]]
    if first["type"] == "union_tag_invalid":
        return f"unknown record kind {kind!r}"
    if loc and loc[0] == kind:
        loc = loc[1:]  # the union's tag
    message = first["msg"]
    if loc and loc[-1] in _NUMBER_MEMBERS:  # a member of "a number or null", e.g. a column's
        loc, message = loc[:-1], "Input should be a number or null"
    where = ".".join(loc) or "(record)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"record '{kind}': {where}: {message}{more}"


_NUMBER_MEMBERS = frozenset({"int", "float", "none"})
