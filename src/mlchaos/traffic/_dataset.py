"""Datasets replayed as traffic: a CSV or Parquet file read column by column with pyarrow.

Values are held as plain Python lists (one per column), which is what request bodies are built
from. Every problem a user can fix in the file or the traffic settings is a ``ConfigError`` that
names the file and, for a missing column, the columns the file does have.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlchaos.errors import ConfigError

if TYPE_CHECKING:
    from mlchaos.spec._traffic import TrafficConfig

__all__ = ["Dataset", "input_columns", "load_dataset", "template_columns"]

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


@dataclass(frozen=True, slots=True)
class Dataset:
    """A table read from a file: column name → values, and which columns hold numbers."""

    path: Path
    data: Mapping[str, Sequence[Any]]
    numeric: frozenset[str]
    rows: int

    @property
    def columns(self) -> list[str]:
        """Column names in file order."""
        return list(self.data)

    def column(self, name: str) -> Sequence[Any]:
        return self.data[name]

    def floats(self, name: str) -> list[float]:
        """A numeric column as floats, NaN where a value is empty."""
        return [math.nan if v is None else float(v) for v in self.data[name]]


def load_dataset(path: str | Path, config: TrafficConfig | None = None) -> Dataset:
    """Read a CSV or Parquet file; with ``config``, also check every column it names.

    Raises ``ConfigError`` for a missing, empty, unreadable or unknown-format file, and (with
    ``config``) for a missing input, label or key column or a non-numeric input or label.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"dataset {p}: file not found")
    if not p.is_file():
        raise ConfigError(f"dataset {p}: not a file")
    name = p.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        reader = _read_csv
    elif name.endswith(_PARQUET_SUFFIXES):
        reader = _read_parquet
    else:
        known = ", ".join((*_CSV_SUFFIXES, *_PARQUET_SUFFIXES))
        raise ConfigError(f"dataset {p}: unknown format {p.suffix or '(no suffix)'}; use {known}")
    if p.stat().st_size == 0:
        raise ConfigError(f"dataset {p}: the file is empty")
    dataset = reader(p)
    if dataset.rows == 0:
        raise ConfigError(f"dataset {p}: no rows (columns: {', '.join(dataset.columns)})")
    if config is not None:
        _check(dataset, config)
    return dataset


def _read_csv(p: Path) -> Dataset:
    import pyarrow as pa  # noqa: PLC0415 - keep `import mlchaos.traffic` light
    from pyarrow import csv  # noqa: PLC0415

    try:
        table = csv.read_csv(p)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"dataset {p}: not a readable CSV file ({_first_line(exc)})") from None
    return _from_table(p, table)


def _read_parquet(p: Path) -> Dataset:
    import pyarrow as pa  # noqa: PLC0415
    from pyarrow import parquet  # noqa: PLC0415

    try:
        table = parquet.read_table(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConfigError(
            f"dataset {p}: not a readable Parquet file ({_first_line(exc)})"
        ) from None
    return _from_table(p, table)


def _from_table(p: Path, table: Any) -> Dataset:
    import pyarrow as pa  # noqa: PLC0415

    data: dict[str, list[Any]] = {}
    numeric: set[str] = set()
    for field, column in zip(table.schema, table.columns, strict=True):
        data[field.name] = column.to_pylist()
        t = field.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            numeric.add(field.name)
    return Dataset(path=p, data=data, numeric=frozenset(numeric), rows=table.num_rows)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def input_columns(dataset: Dataset, config: TrafficConfig) -> list[str]:
    """The columns a request sends as the row: those configured (a v1 or one-tensor v2
    request's ``inputs``), or every column but label and key."""
    inputs = getattr(config.request, "inputs", None)
    if inputs is not None and all(isinstance(c, str) for c in inputs):
        return [str(c) for c in inputs]
    skip = {config.label, config.key}
    return [c for c in dataset.columns if c not in skip]


def template_columns(template: Any) -> Iterator[str]:
    """Every column named by a ``"{{column}}"`` placeholder in a JSON template."""
    if isinstance(template, str):
        m = _PLACEHOLDER.fullmatch(template)
        if m is not None:
            yield m.group(1)
    elif isinstance(template, dict):
        for value in template.values():
            yield from template_columns(value)
    elif isinstance(template, list):
        for value in template:
            yield from template_columns(value)


def placeholder(text: str) -> str | None:
    """The column of a ``"{{column}}"`` string, or ``None`` for any other string."""
    m = _PLACEHOLDER.fullmatch(text)
    return m.group(1) if m is not None else None


def _check(dataset: Dataset, config: TrafficConfig) -> None:
    problems: list[str] = []
    existing = set(dataset.columns)
    request = config.request
    if request.protocol == "json":
        for col in dict.fromkeys(template_columns(request.template)):
            if col not in existing and col not in ("*", "**"):
                problems.append(f"traffic.request.template: no column {col!r}")
    else:
        explicit = request.inputs is not None
        where = "traffic.request.inputs" if explicit else "input"
        hint = (
            ""
            if explicit
            else " (inputs default to every column but label and key;"
            " list the numeric ones in traffic.request.inputs)"
        )
        columns = input_columns(dataset, config)
        if not columns:
            problems.append("no input columns left after removing the label and key columns")
        if request.protocol == "v1":
            typed = [(col, "json") for col in columns]
        else:
            typed = [(c, t.datatype) for t in request.tensors(columns) for c in t.column_names]
        for col, datatype in typed:
            if col not in existing:
                problems.append(f"{where}: no column {col!r}")
            elif datatype not in ("BYTES", "json") and col not in dataset.numeric:
                problems.append(f"{where}: column {col!r} is not numeric{hint}")
            elif any(v is None for v in dataset.data[col]):
                empty = sum(v is None for v in dataset.data[col])
                problems.append(f"{where}: column {col!r} has {empty} empty values")
    if config.label is not None and config.label not in existing:
        problems.append(f"traffic.label: no column {config.label!r}")
    if config.key is not None and config.key not in existing:
        problems.append(f"traffic.key: no column {config.key!r}")
    if problems:
        lines = "\n".join(f"  {x}" for x in problems)
        raise ConfigError(
            f"dataset {dataset.path}: {len(problems)} problem{'s' if len(problems) > 1 else ''}"
            f" (its columns: {', '.join(dataset.columns)})\n{lines}"
        )
