"""The one path language into JSON documents, used everywhere mlchaos points into a body.

A path is a dotted list of keys with ``[index]`` steps: ``outputs[0].data[0]``, ``model_name``.
A key that is not a plain word is quoted in brackets (``["a.b"]``); ``$`` alone is the whole
document; ``[*]`` is every element of a list or every value of an object (for edits that touch
many values, e.g. ``results[*].values``); ``[?]`` is the elements of a list at the indices the
caller selects (an edit's ``where``: the columns whose name matches); ``[#]`` is the elements
of a list at the *rows* of a batched request that belong to the faulted arm (every element when
the request is not batched by key). A key of digits also
indexes a list, so the dotted form ``inputs.0.data.0`` names the same value as
``inputs[0].data[0]``.

Parsing can fail (a configuration error, found before any traffic is sent); following a path
never does: a path that is not in a document gives ``None`` (:func:`extract`) or no locations
(:func:`locate`).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Sequence
from enum import Enum
from typing import Any

__all__ = [
    "ROWS",
    "SELECTED",
    "WILDCARD",
    "PathPart",
    "Wildcard",
    "extract",
    "format_path",
    "locate",
    "parse_path",
]


class Wildcard(Enum):
    """``[*]``: every element of a list, every value of an object; ``[?]``: the elements of a
    list at the indices the caller selected; ``[#]``: those at the rows the caller gave (all
    when it gave none)."""

    ALL = "*"
    SELECTED = "?"
    ROWS = "#"


WILDCARD = Wildcard.ALL
SELECTED = Wildcard.SELECTED
ROWS = Wildcard.ROWS
PathPart = str | int | Wildcard

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_BARE_KEY = re.compile(r"[^.\[\]\s]+")
_INDEX = re.compile(r"\[\s*(-?\d+|\*|\?|#)\s*\]")
_DECODER = json.JSONDecoder()


@functools.lru_cache(maxsize=1024)  # the proxy parses an edit's paths on each faulted request
def parse_path(text: str, *, wildcards: bool = True) -> tuple[PathPart, ...]:
    """Parse ``outputs[0].data[0]``, ``model_name``, ``results[*].values`` or ``["odd key"][1]``.

    Raises ``ValueError`` naming the position of the first problem; with ``wildcards=False``
    (a path that must name one value) a ``[*]`` step is such a problem.
    """
    s = text.strip()
    if not s:
        raise ValueError("empty path; write '$' for the whole document")
    parts: list[PathPart] = []
    pos = 0
    if s[0] == "$" and (len(s) == 1 or s[1] in ".["):
        pos = 1
        if s.startswith(".", pos):
            pos = _parse_key(s, pos + 1, parts, text)
    elif s[0] != "[":
        pos = _parse_key(s, 0, parts, text)
    while pos < len(s):
        if s[pos] == "[":
            pos = _parse_bracket(s, pos, parts, text)
        elif s[pos] == ".":
            pos = _parse_key(s, pos + 1, parts, text)
        else:
            raise ValueError(f"path {text!r}: expected '.' or '[' at position {pos}")
    if not wildcards and any(isinstance(p, Wildcard) for p in parts):
        raise ValueError(
            f"path {text!r}: '[*]', '[?]' or '[#]' is not allowed here (it names one value)"
        )
    return tuple(parts)


def _parse_key(s: str, pos: int, parts: list[PathPart], text: str) -> int:
    m = _BARE_KEY.match(s, pos)
    if m is None:
        raise ValueError(f"path {text!r}: expected a key at position {pos}")
    parts.append(m.group())
    return m.end()


def _parse_bracket(s: str, pos: int, parts: list[PathPart], text: str) -> int:
    m = _INDEX.match(s, pos)
    if m is not None:
        index = m.group(1)
        parts.append(Wildcard(index) if index in "*?#" else int(index))
        return m.end()
    start = pos + 1
    while start < len(s) and s[start] == " ":
        start += 1
    if start < len(s) and s[start] == '"':
        try:
            key, end = _DECODER.raw_decode(s, start)
        except ValueError:
            raise ValueError(f"path {text!r}: bad quoted key at position {start}") from None
        while end < len(s) and s[end] == " ":
            end += 1
        if end < len(s) and s[end] == "]" and isinstance(key, str):
            parts.append(key)
            return end + 1
    raise ValueError(f'path {text!r}: expected [number], [*] or ["key"] at position {pos}')


def format_path(parts: Sequence[PathPart]) -> str:
    """The canonical text of a path; ``parse_path(format_path(p)) == tuple(p)``."""
    if not parts:
        return "$"
    out: list[str] = []
    for part in parts:
        if isinstance(part, Wildcard):
            out.append(f"[{part.value}]")
        elif isinstance(part, int):
            out.append(f"[{part}]")
        elif isinstance(part, str) and _IDENTIFIER.fullmatch(part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{json.dumps(part)}]")
    return "".join(out)


def _keys(
    node: Any,
    part: PathPart,
    selected: frozenset[int] = frozenset(),
    rows: frozenset[int] | None = None,
) -> list[Any]:
    """The keys (or indices) of ``node`` that one step names; none when it names nothing."""
    if part is ROWS:
        if not isinstance(node, list):
            return []
        return (
            list(range(len(node))) if rows is None else [i for i in sorted(rows) if i < len(node)]
        )
    if part is WILDCARD:
        if isinstance(node, dict):
            return list(node)
        return list(range(len(node))) if isinstance(node, list) else []
    if part is SELECTED:
        return [i for i in range(len(node)) if i in selected] if isinstance(node, list) else []
    if isinstance(node, list):
        if isinstance(part, str):
            if not (part.isascii() and part.isdigit()):
                return []
            part = int(part)
        return [part] if isinstance(part, int) and -len(node) <= part < len(node) else []
    if isinstance(node, dict) and isinstance(part, str) and part in node:
        return [part]
    return []


def extract(document: Any, path: Sequence[PathPart]) -> Any:
    """The value at ``path`` in a decoded JSON document, or ``None`` when it is not there (or
    the path has a wildcard: it names no single value)."""
    node = document
    for part in path:
        keys = _keys(node, part)
        if len(keys) != 1 or isinstance(part, Wildcard):
            return None
        node = node[keys[0]]
    return node


def locate(
    document: Any,
    path: Sequence[PathPart],
    selected: frozenset[int] = frozenset(),
    rows: frozenset[int] | None = None,
) -> Iterator[tuple[Any, Any]]:
    """Every ``(container, key)`` whose value the path names, following wildcards (``[?]``:
    the ``selected`` indices, ``[#]``: the ``rows``, all when None); the empty path (the whole
    document) has none."""
    if not path:
        return
    head, rest = path[0], path[1:]
    for key in _keys(document, head, selected, rows):
        if rest:
            yield from locate(document[key], rest, selected, rows)
        else:
            yield document, key
