"""Requests built from dataset rows: Open Inference Protocol v2 (HTTP or gRPC), KServe v1, or
a plain JSON template."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlchaos.spec._traffic import JsonRequest, TrafficConfig, V1Request, V2Request
from mlchaos.traffic._dataset import Dataset, input_columns, placeholder
from mlchaos.traffic._oip import input_tensor

__all__ = ["RequestBuilder", "fill_template"]

ROW_LIST = "*"
"""``"{{*}}"`` in a JSON template: the row's input columns as a list."""
ROW_OBJECT = "**"
"""``"{{**}}"``: the row's input columns as an object, column → value."""


@dataclass(frozen=True, slots=True)
class RequestBuilder:
    """Where a request goes and how its body is made from dataset rows."""

    method: str
    url: str
    """the HTTP URL, or for gRPC the ``grpc://host:port`` target"""
    batch: int
    """rows per request"""
    body: Callable[[Sequence[int], str], Any]
    """``body(rows, request_id)`` → the JSON document to send (v2 JSON for gRPC too)."""

    @property
    def grpc(self) -> bool:
        return self.url.startswith("grpc://")

    @classmethod
    def for_config(cls, config: TrafficConfig, dataset: Dataset) -> RequestBuilder:
        request = config.request
        if isinstance(request, V2Request):
            return cls._v2(config.target, request, dataset, input_columns(dataset, config))
        if isinstance(request, V1Request):
            return cls._v1(config.target, request, dataset, input_columns(dataset, config))
        return cls._json(config.target, request, dataset, input_columns(dataset, config))

    @classmethod
    def _v2(
        cls, target: str, request: V2Request, dataset: Dataset, columns: list[str]
    ) -> RequestBuilder:
        if request.protocol == "v2-grpc":
            url = target
        else:
            url = f"{target}/v2/models/{request.model}"
            if request.version is not None:
                url += f"/versions/{request.version}"
            url += "/infer"
        tensors = request.tensors(columns)
        data = dataset.data

        def body(rows: Sequence[int], request_id: str) -> dict[str, Any]:
            document: dict[str, Any] = {
                "id": request_id,
                "inputs": [input_tensor(t, data, rows) for t in tensors],
            }
            if request.parameters:
                document["parameters"] = dict(request.parameters)
            if request.outputs:
                document["outputs"] = [{"name": name} for name in request.outputs]
            return document

        return cls("POST", url, request.batch, body)

    @classmethod
    def _v1(
        cls, target: str, request: V1Request, dataset: Dataset, columns: list[str]
    ) -> RequestBuilder:
        url = f"{target}/v1/models/{request.model}:predict"
        data = dataset.data
        as_object = request.instance == "object"

        def body(rows: Sequence[int], request_id: str) -> dict[str, Any]:
            if as_object:
                return {"instances": [{c: data[c][r] for c in columns} for r in rows]}
            return {"instances": [[data[c][r] for c in columns] for r in rows]}

        return cls("POST", url, request.batch, body)

    @classmethod
    def _json(
        cls, target: str, request: JsonRequest, dataset: Dataset, columns: list[str]
    ) -> RequestBuilder:
        path = request.path if request.path.startswith("/") else f"/{request.path}"
        template = request.template
        data = dataset.data

        def body(rows: Sequence[int], request_id: str) -> Any:
            return fill_template(template, data, rows[0], columns)

        return cls(request.method, f"{target}{path}", 1, body)


def fill_template(
    template: Any, data: Mapping[str, Sequence[Any]], row: int, columns: Sequence[str] = ()
) -> Any:
    """A copy of ``template`` where each string exactly ``"{{column}}"`` is that row's value,
    ``"{{*}}"`` the list of the row's ``columns`` values and ``"{{**}}"`` the object of them.

    A value keeps its type (a number stays a number); other strings are left as they are.
    """
    if isinstance(template, str):
        column = placeholder(template)
        if column == ROW_LIST:
            return [data[c][row] for c in columns]
        if column == ROW_OBJECT:
            return {c: data[c][row] for c in columns}
        return template if column is None else data[column][row]
    if isinstance(template, dict):
        return {k: fill_template(v, data, row, columns) for k, v in template.items()}
    if isinstance(template, list):
        return [fill_template(v, data, row, columns) for v in template]
    return template
