"""Loading experiment files: YAML (or JSON) → typed model, every problem reported with its path.

The YAML is composed node by node so each value keeps its line and column; duplicate keys are
errors; pydantic's errors are rewritten into one readable line each, with a "did you mean" for
misspelt keys. Cross-references (a fault's target names a proxy, …) are checked after the model
validates, and reported the same way.
"""

from __future__ import annotations

import difflib
import json
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from mlchaos.errors import ConfigError, SpecError, SpecIssue

__all__ = ["load_model", "parse_text", "substitute", "validate_data"]

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]
Marks = dict[Loc, tuple[int, int]]
_VARIABLE = re.compile(r"\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PLAIN_COLLECTIONS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})
MAX_FILE_BYTES = 4 * 2**20  # an experiment file is kilobytes; beyond this, something is wrong
MAX_VALUES = 100_000  # values a file may expand to (aliases included)
MAX_DEPTH = 64  # nesting levels


class _UnboundedError(Exception):
    """A file that would expand or nest past the bounds: stop at once, with its position."""

    def __init__(self, issue: SpecIssue) -> None:
        super().__init__(issue.message)
        self.issue = issue


def load_model(
    path: str | Path, model: type[M], *, variables: Mapping[str, str] | None = None
) -> M:
    """Read, parse and validate a YAML or JSON file into ``model``, or raise ConfigError.

    With ``variables``, each ``${NAME}`` in a string value is replaced by that variable
    (``$${`` keeps a literal ``${``); a name it lacks is an error at its line.
    """
    p = Path(path)
    text = _read_file(p)
    data, marks = parse_text(text, str(p))
    if variables is not None:
        data = substitute(data, variables, source=str(p), marks=marks)
    return validate_data(data, model, source=str(p), marks=marks)


def _read_file(p: Path) -> str:
    """The file's text: a regular file of at most :data:`MAX_FILE_BYTES`, else a ConfigError
    (a FIFO or a device is refused without reading from it)."""
    try:
        info = p.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{p}: is a directory, expected a YAML or JSON file")
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{p}: not a regular file (a FIFO, socket or device is not read)")
        with p.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{p}: larger than {MAX_FILE_BYTES // 2**20} MiB: not an experiment file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file (expected UTF-8 YAML or JSON)") from None


def substitute(
    data: Any, variables: Mapping[str, str], *, source: str, marks: Marks | None = None
) -> Any:
    """A copy of parsed ``data`` with ``${NAME}`` in every string replaced from ``variables``."""
    issues: list[SpecIssue] = []
    marks = marks or {}

    def walk(value: Any, loc: Loc) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*loc, i)) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value

        def one(m: re.Match[str]) -> str:
            if m.group(0).startswith("$$"):
                return m.group(0)[1:]
            name = m.group(1)
            if name not in variables:
                issues.append(
                    SpecIssue(
                        _render(loc),
                        f"variable ${{{name}}} is not set",
                        *marks.get(loc, (None, None)),
                    )
                )
                return m.group(0)
            return variables[name]

        return _VARIABLE.sub(one, value)

    result = walk(data, ())
    if issues:
        raise SpecError(source, issues)
    return result


def parse_text(text: str, source: str) -> tuple[Any, Marks]:
    """Parse YAML (a superset of the JSON we accept) keeping each value's position."""
    if source.endswith(".json"):
        try:
            return json.loads(text), {}
        except json.JSONDecodeError as exc:
            raise SpecError(source, [SpecIssue("", exc.msg, exc.lineno, exc.colno)]) from None
        except RecursionError:
            raise SpecError(source, [SpecIssue("", "the file is nested too deeply")]) from None
    marks: Marks = {}
    issues: list[SpecIssue] = []
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            raise SpecError(source, [SpecIssue("", "the file is empty")])
        data = _construct(node, (), marks, issues, yaml.SafeLoader(""), [0])
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"invalid YAML: {exc.problem or exc.context or exc}"
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise SpecError(source, [SpecIssue("", message, line, col)]) from None
    except yaml.YAMLError as exc:
        raise SpecError(source, [SpecIssue("", f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise SpecError(source, [SpecIssue("", "the file is nested too deeply")]) from None
    except _UnboundedError as exc:
        raise SpecError(source, [exc.issue]) from None
    if issues:
        raise SpecError(source, issues)
    return data, marks


def _construct(
    node: yaml.Node,
    loc: Loc,
    marks: Marks,
    issues: list[SpecIssue],
    loader: yaml.SafeLoader,
    count: list[int],
) -> Any:
    """The value of ``node``, every position recorded in ``marks``. Bounded: aliases that
    expand past :data:`MAX_VALUES` values (a "billion laughs" file) and nesting past
    :data:`MAX_DEPTH` stop with an issue at their line, not after gigabytes."""
    marks[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    count[0] += 1
    if count[0] > MAX_VALUES:
        why = f"expands to more than {MAX_VALUES} values (YAML aliases?)"
        raise _UnboundedError(SpecIssue(_render(loc), why, *marks[loc]))
    if len(loc) > MAX_DEPTH:
        why = f"nested more than {MAX_DEPTH} levels"
        raise _UnboundedError(SpecIssue(_render(loc), why, *marks[loc]))
    if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_COLLECTIONS:
        issues.append(SpecIssue(_render(loc), f"unsupported YAML tag '{node.tag}'", *marks[loc]))
        return None
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            try:
                key = loader.construct_object(key_node, deep=True)
            except ValueError:
                key = None  # (an integer of thousands of digits): not a plain name
            if not isinstance(key, str | int | float | bool) or key is None:
                line = key_node.start_mark.line + 1
                issues.append(SpecIssue(_render(loc), "keys must be plain names", line))
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in result:
                line = key_node.start_mark.line + 1
                issues.append(SpecIssue(_render((*loc, key)), "duplicate key", line))
                continue
            result[key] = _construct(value_node, (*loc, key), marks, issues, loader, count)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, (*loc, i), marks, issues, loader, count)
            for i, item in enumerate(node.value)
        ]
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # e.g. an integer of thousands of digits
        issues.append(SpecIssue(_render(loc), f"cannot read this value: {exc}", *marks[loc]))
        return None


def validate_data(data: Any, model: type[M], *, source: str, marks: Marks | None = None) -> M:
    """Validate parsed data into ``model``; every error becomes one located SpecIssue."""
    if not isinstance(data, dict):
        raise SpecError(
            source, [SpecIssue("", f"expected a mapping at the top, got {_kind(data)}")]
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        vocabulary = sorted(_field_names(model.model_json_schema()))
        issues = [_issue(err, data, marks or {}, vocabulary) for err in exc.errors()]
        issues.sort(key=lambda i: (i.line is None, i.line or 0))
        raise SpecError(source, _dedupe(issues)) from None


def _issue(err: ErrorDetails, data: Any, marks: Marks, vocabulary: list[str]) -> SpecIssue:
    loc = _data_loc(err["loc"], data)
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        close = difflib.get_close_matches(key, vocabulary, n=1, cutoff=0.7)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        message = f"unknown key '{key}'{hint}"
    elif kind == "missing":
        message = "required key is missing"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = err.get("ctx", {})
        expected = ctx.get("expected_tags", "")
        tag = ctx.get("tag")
        field = ctx.get("discriminator", "'type'").strip("'")
        message = (
            f"unknown {field} '{tag}'; expected one of {expected}"
            if tag is not None
            else f"'{field}' is required"
        )
    else:
        message = err["msg"].removeprefix("Value error, ")
        message = message[:1].lower() + message[1:]
        value = err.get("input")
        if kind not in ("mlchaos_value", "value_error") and _is_scalar(value):
            message = f"{message}, got {value!r}"
    line_col = _nearest_mark(loc, marks)
    return SpecIssue(_render(loc), message, *(line_col or (None, None)))


def _data_loc(loc: tuple[int | str, ...], data: Any) -> Loc:
    """Drop pydantic's internal steps (union tags, validator names) that are not in the file."""
    out: list[str | int] = []
    current = data
    for i, step in enumerate(loc):
        if isinstance(current, dict):
            after = loc[i + 1] if i + 1 < len(loc) else None
            if step in current and after in current and not isinstance(current[step], dict):
                continue  # a union's tag that is also a field ('metric'): the next step is real
            if step in current:
                out.append(step)
                current = current[step]
            elif isinstance(step, str) and not _internal(step) and step not in _tags(current):
                out.append(step)  # a missing or unknown key: keep it in the path
                current = None
        elif isinstance(current, list) and isinstance(step, int) and 0 <= step < len(current):
            out.append(step)
            current = current[step]
    return tuple(out)


def _internal(step: str) -> bool:
    return "[" in step or ("-" in step and "(" in step)


def _tags(mapping: dict[Any, Any]) -> set[str]:
    """Union tags pydantic may put in a path: the discriminators given, and the defaults of
    those that may be left out (a probe's or action's ``type``, the traffic's ``mode``)."""
    given = {str(v) for k, v in mapping.items() if k in ("type", "protocol", "mode")}
    return given | {"http", "replay"}


def _nearest_mark(loc: Loc, marks: Marks) -> tuple[int, int] | None:
    for end in range(len(loc), -1, -1):
        if (found := marks.get(loc[:end])) is not None:
            return found
    return None


def _render(loc: Loc) -> str:
    parts: list[str] = []
    for step in loc:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        else:
            parts.append(f".{step}" if parts else str(step))
    return "".join(parts)


def _field_names(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            yield from props
        for value in schema.values():
            yield from _field_names(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _field_names(value)


def _dedupe(issues: list[SpecIssue]) -> list[SpecIssue]:
    seen: set[tuple[str, str]] = set()
    out = []
    for issue in issues:
        if (issue.path, issue.message) not in seen:
            seen.add((issue.path, issue.message))
            out.append(issue)
    return out


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__
