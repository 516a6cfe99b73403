"""Data faults on JSON bodies: edits at paths, applied to the faulted arm's bodies.

Paths are :mod:`mlchaos.jsonpath` paths, ``[*]`` wildcards included (every element of a list,
every value of an object), e.g. ``results[1].values[*]`` or ``inputs[0].data[2]``. A path that
matches nothing changes nothing. Pure functions: the HTTP plane decides which bodies pass
through.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlchaos.jsonpath import locate, parse_path

if TYPE_CHECKING:
    from mlchaos.proxy._rules import Edit, RewriteRule

__all__ = ["apply_edits", "rewrite_json"]

MAX_BODY = 16 * 1024 * 1024  # larger bodies pass unchanged


def apply_edits(
    document: Any,
    edits: Sequence[Edit],
    rows: frozenset[int] | None = None,
    request: Any = None,
) -> int:
    """Apply ``edits`` in place; the number of values changed. ``rows``: what ``[#]`` takes
    (the batched request's rows in the faulted arm; all when None); ``request``: the decoded
    request, for a ``where`` that leaves its keys alone."""
    changed = 0
    for edit in edits:
        path = parse_path(edit.path)
        selected = frozenset() if edit.where is None else edit.where.indices(document, request)
        targets = list(locate(document, path, selected, rows))
        if edit.drop:  # remove list items from the end, so earlier indices stay valid
            by_index = sorted(targets, key=lambda t: t[1] if isinstance(t[1], int) else 0)
            for container, key in reversed(by_index):
                if isinstance(container, list):
                    container.pop(int(key))
                else:
                    container.pop(key, None)
                changed += 1
            continue
        for container, key in targets:
            old = container[key]
            if edit.scale is not None or edit.shift is not None:
                if isinstance(old, bool) or not isinstance(old, int | float):
                    continue
                container[key] = old * (1.0 if edit.scale is None else edit.scale) + (
                    edit.shift or 0.0
                )
            else:
                container[key] = math.nan if edit.set == "NaN" else edit.set
            changed += 1
    return changed


def rewrite_json(
    body: bytes,
    rules: Sequence[RewriteRule],
    which: str,
    rows: Sequence[frozenset[int] | None] | None = None,
    request: Any = None,
) -> tuple[bytes, list[bool]]:
    """The body after the rules' ``which`` (``request``/``response``) edits, and which rules
    changed it. ``rows``: each rule's ``[#]`` rows (see :func:`apply_edits`). A body that is not
    JSON, is too large, or that no rule changed, passes as it was (and counts as not hit)."""
    untouched = (body, [False] * len(rules))
    if not body or len(body) > MAX_BODY:
        return untouched
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return untouched
    per_rule = rows if rows is not None else [None] * len(rules)
    changed = [
        apply_edits(document, rule.request if which == "request" else rule.response, these, request)
        > 0
        for rule, these in zip(rules, per_rule, strict=True)
    ]
    if not any(changed):
        return untouched
    return json.dumps(document, separators=(",", ":")).encode(), changed
