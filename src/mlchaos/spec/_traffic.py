"""Configuration of replay traffic: dataset, rate, duration, request shape, what to extract."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from mlchaos.arms import ArmKey, ArmSplit
from mlchaos.jsonpath import ROWS, PathPart, Wildcard, parse_path
from mlchaos.units import Duration, PositiveDuration, Rate, Share

__all__ = [
    "Extract",
    "JsonRequest",
    "LabelSource",
    "LiveTraffic",
    "RequestShape",
    "Traffic",
    "TrafficConfig",
    "V1Request",
    "V2Input",
    "V2Request",
    "row_path",
    "traffic_mode",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


V2Datatype = Literal["FP32", "FP64", "INT32", "INT64", "BOOL", "BYTES"]
"""The tensor datatypes mlchaos sends (OIP v2 names)."""

MAX_BATCH = 1024


class V2Input(_Model):
    """One named input tensor of an OIP v2 request, made of dataset columns."""

    name: str = Field(min_length=1)
    columns: list[str] | None = Field(
        None, min_length=1, description="dataset columns of each row's values; default: [name]"
    )
    datatype: V2Datatype = "FP32"
    shape: list[int] | None = Field(
        None,
        description="shape of one row's values (the tensor is [rows, *shape]); default: "
        "[number of columns]; [] sends one value per row as a [rows] tensor",
    )
    parameters: dict[str, Any] = {}

    @property
    def column_names(self) -> list[str]:
        return [self.name] if self.columns is None else list(self.columns)

    @property
    def row_shape(self) -> list[int]:
        return [len(self.column_names)] if self.shape is None else list(self.shape)

    @model_validator(mode="after")
    def _shape_fits(self) -> Self:
        if self.shape is not None:
            if any(d < 1 for d in self.shape):
                raise ValueError(f"shape {self.shape}: every dimension must be at least 1")
            if math.prod(self.shape) != len(self.column_names):
                raise ValueError(
                    f"shape {self.shape} holds {math.prod(self.shape)} values per row, but the "
                    f"input has {len(self.column_names)} columns"
                )
        return self


class V2Request(_Model):
    """Open Inference Protocol v2 (MLServer, KServe, Triton): ``POST
    /v2/models/{model}[/versions/{version}]/infer`` over HTTP, or ``ModelInfer`` over gRPC
    (``protocol: v2-grpc``, target ``grpc://host:port``).

    ``inputs`` is either a list of columns (sent as one tensor ``input_name`` of ``datatype``)
    or a list of named tensors; ``batch`` rows go in each request, one observation each.
    """

    protocol: Literal["v2", "v2-grpc"] = "v2"
    model: str = Field(min_length=1)
    version: str | None = None
    input_name: str = "input-0"
    datatype: V2Datatype = "FP32"
    inputs: list[str] | list[V2Input] | None = Field(
        None,
        description="dataset columns sent as the one input tensor (default: all but label and "
        "key), or a list of named input tensors",
    )
    parameters: dict[str, Any] = Field(
        {}, description="request parameters, e.g. {content_type: pd}"
    )
    outputs: list[str] = Field([], description="outputs to ask for, e.g. [predict_proba]")
    batch: int = Field(1, ge=1, le=MAX_BATCH, description="dataset rows per request")

    def tensors(self, default_columns: list[str]) -> list[V2Input]:
        """The input tensors; the one-tensor form is spelled out with its columns (or
        ``default_columns``)."""
        named = [i for i in self.inputs or () if isinstance(i, V2Input)]
        if named:
            return named
        columns = [c for c in self.inputs or default_columns if isinstance(c, str)]
        return [V2Input(name=self.input_name, columns=columns or None, datatype=self.datatype)]


class V1Request(_Model):
    """KServe v1: ``POST /v1/models/{model}:predict`` with ``{"instances": [...]}``; each
    instance is a row of input columns (a list, or an object column → value)."""

    protocol: Literal["v1"]
    model: str = Field(min_length=1)
    inputs: list[str] | None = Field(
        None,
        min_length=1,
        description="dataset columns of each instance; default: all but label and key",
    )
    instance: Literal["list", "object"] = "list"
    batch: int = Field(1, ge=1, le=MAX_BATCH, description="dataset rows per request")


class JsonRequest(_Model):
    """A plain JSON request; strings ``"{{column}}"`` in the template take the row's value,
    ``"{{*}}"`` the row's input columns as a list and ``"{{**}}"`` as an object."""

    protocol: Literal["json"]
    path: str = "/predict"
    method: Literal["POST", "PUT"] = "POST"
    template: dict[str, Any]

    @property
    def batch(self) -> int:
        return 1


RequestShape = Annotated[V2Request | V1Request | JsonRequest, Field(discriminator="protocol")]


class Extract(_Model):
    """Where the answer says what it predicted and which model answered.

    Paths are dotted JSON paths (``outputs[0].data[0]``); in a batched request ``[#]`` stands
    for the row's place in the batch. Left out, ``prediction`` is the protocol's own: for v2,
    the row's value in the output tensor ``output`` (default: the first), its element ``index``
    when a row has several (``predict_proba``); for v1 ``predictions[#]``; for json
    ``outputs[0].data[0]``.
    """

    prediction: str | None = "outputs[0].data[0]"
    output: str | None = Field(None, description="v2: the output tensor read, by name")
    index: int | None = Field(None, ge=0, description="v2: which of a row's values is predicted")
    model: str | None = "model_name"
    model_version: str | None = Field(
        None, description="path of the model's version; the model is then 'name:version'"
    )
    model_header: str | None = Field(
        None, description="response header naming the answering model (read before 'model')"
    )
    degradation: str | None = Field(
        None,
        description="text naming the degraded inputs or models the answer used, comma-joined "
        "(e.g. 'cached_features,fallback_model'); absent, empty or 'none' = not degraded",
    )
    feature_age: str | None = Field(None, description="age in seconds of the features it used")

    @field_validator("prediction", "model", "model_version", "degradation", "feature_age")
    @classmethod
    def _valid_path(cls, v: str | None) -> str | None:
        if v is not None:
            row_path(v)
        return v

    @property
    def protocol_prediction(self) -> bool:
        """Whether the prediction is read the protocol's own way (no path was given)."""
        return "prediction" not in self.model_fields_set


def row_path(text: str) -> tuple[PathPart, ...]:
    """A path to one value, where one ``[#]`` may stand for the row's place in its batch."""
    parts = parse_path(text)
    if any(isinstance(p, Wildcard) and p is not ROWS for p in parts):
        raise ValueError(f"path {text!r}: only '[#]' (the row in its batch) is allowed here")
    if sum(p is ROWS for p in parts) > 1:
        raise ValueError(f"path {text!r}: at most one '[#]'")
    return parts


class LabelSource(_Model):
    """Labels joined after the answer, by request, from a label service (delayed labels).

    mlchaos POSTs ``{"requests": [{"id", "row", "key", "time"}, ...]}`` (request id, dataset row,
    key value as text or null, wall-clock send time) and expects ``{"labels": [...]}`` in the
    same order, each a number or null. Only successful responses are labelled.
    """

    url: str = Field(description="the label service's endpoint, e.g. http://127.0.0.1:9000/labels")
    batch: int = Field(256, gt=0, le=10_000, description="most requests labelled per call")
    timeout: PositiveDuration = Duration(2.0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return _http(v)


class TrafficConfig(_Model):
    """Open-loop replay of a dataset against ``target`` at ``rate`` for ``duration``."""

    mode: Literal["replay"] = "replay"
    target: str = Field(description="base URL requests are sent to, e.g. http://127.0.0.1:8080")
    dataset: str = Field(description="CSV or Parquet file; relative paths are from the spec file")
    rate: Rate
    duration: PositiveDuration
    request: RequestShape
    arms: ArmSplit = ArmSplit(experiment=Share(0.5), control=Share(0.5))
    label: str | None = Field(None, description="dataset column holding the true label")
    labels: LabelSource | None = Field(
        None, description="or: fetch each request's label from a label service after it answers"
    )
    key: str | None = Field(None, description="dataset column hashed to choose the arm")
    arm_targets: dict[Literal["experiment", "control"], str] = Field(
        {},
        description="where the requests of an arm go instead of 'target', e.g. the arm's own "
        "listener of a tcp proxy (serve.arm_listen) for gRPC traffic",
    )
    extract: Extract = Extract()
    headers: dict[str, str] = {}
    timeout: PositiveDuration = Duration(5.0)
    max_in_flight: int = Field(1024, gt=0)
    seed: int = 0

    @field_validator("target")
    @classmethod
    def _url(cls, v: str) -> str:
        return _target(v)

    @field_validator("arm_targets")
    @classmethod
    def _urls(cls, v: dict[str, str]) -> dict[str, str]:
        return {arm: _target(url) for arm, url in v.items()}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.label is not None and self.labels is not None:
            raise ValueError("give 'label' (a dataset column) or 'labels' (a service), not both")
        grpc = self.request.protocol == "v2-grpc"
        for target in (self.target, *self.arm_targets.values()):
            if grpc != target.startswith("grpc://"):
                raise ValueError(
                    f"target {target!r}: protocol {self.request.protocol} needs "
                    + ("a grpc://host:port target" if grpc else "an http:// target")
                )
        if self.key is not None and self.request.batch > 1:
            raise ValueError(
                "a batched request (request.batch > 1) has one arm, but rows with different "
                "keys ('key') may belong to different arms: use batch 1 with a key"
            )
        v2 = self.request.protocol in ("v2", "v2-grpc")
        if not v2 and (self.extract.output is not None or self.extract.index is not None):
            raise ValueError("extract.output and extract.index read v2 output tensors only")
        return self


class LiveTraffic(_Model):
    """Real client traffic, observed at an edge proxy and split into cohorts by a key hash.

    The runner sets the cohorts (``arms``: shares and salt) on every HTTP proxy of the
    experiment for the run, under the experiment's lease: the edge puts each request in a cohort
    by the stable hash of ``arms.key`` and logs it; a dependency proxy takes the arm from the
    header the service propagates, or hashes the key its own request carries (``keys``).
    """

    mode: Literal["live"]
    edge: str = Field(description="name of the proxy in front of the service (section 'proxies')")
    duration: PositiveDuration
    arms: ArmSplit = Field(
        ArmSplit(experiment=Share(0.02), control=Share(0.02)),
        description="cohort shares, the key at the edge (default: the edge's own) and the salt "
        "(default: the run id, so each run draws new cohorts)",
    )
    keys: dict[str, ArmKey] = Field(
        {}, description="per dependency proxy: where its requests carry the same key"
    )
    extract: Extract = Extract()
    timeout: PositiveDuration = Field(
        Duration(2.0),
        description="the longest the service's callers wait for an answer: requests sent within "
        "this long of a fault's removal are not judged (their life would straddle it)",
    )
    poll: PositiveDuration = Field(
        Duration(0.1), description="how often the edge's observations are read"
    )


def traffic_mode(value: Any) -> str:
    """Discriminator of the traffic section: ``mode`` may be left out and then means replay."""
    if isinstance(value, dict):
        return str(value.get("mode", "replay"))
    return str(getattr(value, "mode", "replay"))


Traffic = Annotated[
    Annotated[TrafficConfig, Tag("replay")] | Annotated[LiveTraffic, Tag("live")],
    Discriminator(traffic_mode),
]


def _target(url: str) -> str:
    if not url.startswith(("http://", "https://", "grpc://")):
        raise ValueError(f"expected an http:// (or, for v2-grpc, grpc://) URL, got {url!r}")
    return url.rstrip("/")


def _http(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// URL, got {url!r}")
    return url
