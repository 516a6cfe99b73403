"""Open Inference Protocol v2 tensors: input tensors made of dataset rows, and the values of
one row read back out of an output tensor.

A tensor's ``data`` is its values flattened in row-major order (servers also accept and send
nested lists, which are flattened on reading); its ``shape`` starts with the number of rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlchaos.spec._traffic import V2Input

__all__ = ["input_tensor", "output_names", "output_rows", "row_width"]

_CONVERT: dict[str, type] = {
    "FP32": float,
    "FP64": float,
    "INT32": int,
    "INT64": int,
    "BOOL": bool,
    "BYTES": str,
}


def input_tensor(
    spec: V2Input, data: Mapping[str, Sequence[Any]], rows: Sequence[int]
) -> dict[str, Any]:
    """The JSON input tensor ``spec`` makes of dataset ``rows``."""
    convert = _CONVERT[spec.datatype]
    columns = [data[c] for c in spec.column_names]
    values = [convert(col[r]) for r in rows for col in columns]
    tensor: dict[str, Any] = {
        "name": spec.name,
        "shape": [len(rows), *spec.row_shape],
        "datatype": spec.datatype,
        "data": values,
    }
    if spec.parameters:
        tensor["parameters"] = dict(spec.parameters)
    return tensor


def output_rows(document: Any, name: str | None, index: int | None, rows: int) -> list[Any]:
    """The prediction of each of ``rows`` rows in the output tensor ``name`` (default: the
    first): the row's one value, or its value at ``index`` when a row has several (a row of
    class probabilities). A row the answer lacks, or a row of several values without
    ``index``, is ``None`` (or the list of its values, which is no prediction either)."""
    tensor = _output(document, name)
    if tensor is None:
        return [None] * rows
    flat = list(_flatten(tensor.get("data")))
    width = _width(tensor)
    out: list[Any] = []
    for row in range(rows):
        values = flat[row * width : (row + 1) * width]
        if len(values) < width or not values:
            out.append(None)
        elif index is not None:
            out.append(values[index] if index < len(values) else None)
        else:
            out.append(values[0] if width == 1 else values)
    return out


def output_names(document: Any) -> list[str]:
    """The names of the output tensors in an answer, for messages."""
    outputs = document.get("outputs") if isinstance(document, dict) else None
    if not isinstance(outputs, list):
        return []
    return [str(t.get("name")) for t in outputs if isinstance(t, dict)]


def row_width(document: Any, name: str | None) -> int | None:
    """How many values a row of the output tensor ``name`` holds (None: no such tensor)."""
    tensor = _output(document, name)
    return None if tensor is None else _width(tensor)


def _width(tensor: dict[str, Any]) -> int:
    """Values per row: the product of the shape after its first (rows) dimension."""
    shape = tensor.get("shape")
    dims = [d for d in shape if isinstance(d, int)] if isinstance(shape, list) else []
    return math.prod(dims[1:]) if len(dims) > 1 else 1


def _output(document: Any, name: str | None) -> dict[str, Any] | None:
    outputs = document.get("outputs") if isinstance(document, dict) else None
    if not isinstance(outputs, list):
        return None
    for tensor in outputs:
        if isinstance(tensor, dict) and (name is None or tensor.get("name") == name):
            return tensor
    return None


def _flatten(data: Any) -> Iterator[Any]:
    if isinstance(data, list):
        for item in data:
            yield from _flatten(item)
    elif data is not None:
        yield data
