"""Request bodies built from dataset rows: Open Inference Protocol v2, or a plain JSON template."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlchaos.spec._traffic import JsonRequest, TrafficConfig, V2Request
from mlchaos.traffic._dataset import Dataset, input_columns, placeholder

__all__ = ["RequestBuilder", "fill_template"]


@dataclass(frozen=True, slots=True)
class RequestBuilder:
    """Where a request goes and how its JSON body is made from row ``row`` of the dataset."""

    method: str
    url: str
    body: Callable[[int, str], Any]
    """``body(row, request_id)`` → the JSON document to send."""

    @classmethod
    def for_config(cls, config: TrafficConfig, dataset: Dataset) -> RequestBuilder:
        request = config.request
        if isinstance(request, V2Request):
            return cls._v2(config.target, request, dataset, input_columns(dataset, config))
        return cls._json(config.target, request, dataset)

    @classmethod
    def _v2(
        cls, target: str, request: V2Request, dataset: Dataset, inputs: Sequence[str]
    ) -> RequestBuilder:
        url = f"{target}/v2/models/{request.model}"
        if request.version is not None:
            url += f"/versions/{request.version}"
        url += "/infer"
        columns = [dataset.column(c) for c in inputs]
        name = request.input_name
        shape = [1, len(columns)]

        def body(row: int, request_id: str) -> dict[str, Any]:
            data = [float(col[row]) for col in columns]
            return {
                "id": request_id,
                "inputs": [{"name": name, "shape": shape, "datatype": "FP32", "data": data}],
            }

        return cls("POST", url, body)

    @classmethod
    def _json(cls, target: str, request: JsonRequest, dataset: Dataset) -> RequestBuilder:
        path = request.path if request.path.startswith("/") else f"/{request.path}"
        template = request.template
        data = dataset.data

        def body(row: int, request_id: str) -> Any:
            return fill_template(template, data, row)

        return cls(request.method, f"{target}{path}", body)


def fill_template(template: Any, data: Mapping[str, Sequence[Any]], row: int) -> Any:
    """A copy of ``template`` where each string exactly ``"{{column}}"`` is that row's value.

    The value keeps its type (a number stays a number); other strings are left as they are.
    """
    if isinstance(template, str):
        column = placeholder(template)
        return template if column is None else data[column][row]
    if isinstance(template, dict):
        return {k: fill_template(v, data, row) for k, v in template.items()}
    if isinstance(template, list):
        return [fill_template(v, data, row) for v in template]
    return template
