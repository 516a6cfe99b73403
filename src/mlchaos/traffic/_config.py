"""Configuration of replay traffic: dataset, rate, duration, request shape, what to extract."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlchaos.proxy._config import ArmSplit
from mlchaos.traffic._extract import parse_path
from mlchaos.units import Duration, PositiveDuration, Rate, Share

__all__ = ["Extract", "JsonRequest", "LabelSource", "RequestShape", "TrafficConfig", "V2Request"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class V2Request(_Model):
    """Open Inference Protocol v2: ``POST /v2/models/{model}/infer``, one FP32 row per request."""

    protocol: Literal["v2"] = "v2"
    model: str
    version: str | None = None
    input_name: str = "input-0"
    inputs: list[str] | None = Field(
        None, description="dataset columns sent as the input row; default: all but label and key"
    )


class JsonRequest(_Model):
    """A plain JSON request; strings ``"{{column}}"`` in the template take the row's value."""

    protocol: Literal["json"]
    path: str = "/predict"
    method: Literal["POST", "PUT"] = "POST"
    template: dict[str, Any]


RequestShape = Annotated[V2Request | JsonRequest, Field(discriminator="protocol")]


class Extract(_Model):
    """Dotted JSON paths (``outputs[0].data[0]``) into the response."""

    prediction: str | None = "outputs[0].data[0]"
    model: str | None = "model_name"
    degradation: str | None = Field(
        None,
        description="text naming the degraded inputs or models the answer used, comma-joined "
        "(e.g. 'cached_features,fallback_model'); absent, empty or 'none' = not degraded",
    )
    feature_age: str | None = Field(None, description="age in seconds of the features it used")

    @field_validator("prediction", "model", "degradation", "feature_age")
    @classmethod
    def _valid_path(cls, v: str | None) -> str | None:
        if v is not None:
            parse_path(v)
        return v


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
    extract: Extract = Extract()
    headers: dict[str, str] = {}
    timeout: PositiveDuration = Duration(5.0)
    max_in_flight: int = Field(1024, gt=0)
    seed: int = 0

    @field_validator("target")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return _http(v).rstrip("/")

    @model_validator(mode="after")
    def _one_label_source(self) -> Self:
        if self.label is not None and self.labels is not None:
            raise ValueError("give 'label' (a dataset column) or 'labels' (a service), not both")
        return self


def _http(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// URL, got {url!r}")
    return url
