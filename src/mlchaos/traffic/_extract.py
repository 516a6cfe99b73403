"""Paths into JSON responses (``outputs[0].data[0]``), and reading a prediction or model from them.

A path is a dotted list of keys with ``[index]`` steps; a key that is not a plain identifier is
written quoted in brackets (``["a.b"]``); ``$`` alone is the whole document. Parsing a path can
fail (a configuration error, found before any traffic is sent); following one never does: a
path that is not in a response gives ``None``, and the prediction is then NaN.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["PathPart", "extract", "format_path", "parse_path", "to_model", "to_prediction"]

PathPart = str | int

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_BARE_KEY = re.compile(r"[^.\[\]\s]+")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_DECODER = json.JSONDecoder()


def parse_path(text: str) -> tuple[PathPart, ...]:
    """Parse ``outputs[0].data[0]``, ``model_name`` or ``["odd key"][1]`` into its steps.

    Raises ``ValueError`` naming the position of the first problem.
    """
    s = text.strip()
    if not s:
        raise ValueError("empty path; write '$' for the whole response")
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
        parts.append(int(m.group(1)))
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
        if end < len(s) and s[end] == "]":
            parts.append(key)
            return end + 1
    raise ValueError(f'path {text!r}: expected [number] or ["key"] at position {pos}')


def format_path(parts: Sequence[PathPart]) -> str:
    """The canonical text of a path; ``parse_path(format_path(p)) == tuple(p)``."""
    if not parts:
        return "$"
    out: list[str] = []
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENTIFIER.fullmatch(part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{json.dumps(part)}]")
    return "".join(out)


def extract(document: Any, path: Sequence[PathPart]) -> Any:
    """The value at ``path`` in a decoded JSON document, or ``None`` when it is not there."""
    node = document
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or not -len(node) <= part < len(node):
                return None
            node = node[part]
        else:
            if not isinstance(node, dict):
                return None
            node = node.get(part)
            if node is None:
                return None
    return node


def to_prediction(value: Any) -> float:
    """A prediction as a float: booleans are 0/1, ``[x]`` is ``x``, numeric text is its number.

    Anything else (missing, an object, a longer list, non-numeric text) is NaN.
    """
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return math.nan
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


def to_model(value: Any) -> str | None:
    """The name of the model that answered: text as is, a number as its text, else ``None``."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None
