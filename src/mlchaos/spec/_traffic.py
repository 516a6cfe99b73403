"""Configuration of replay traffic: dataset, rate, duration, request shape, what to extract."""

from __future__ import annotations

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
from mlchaos.jsonpath import parse_path
from mlchaos.units import Duration, PositiveDuration, Rate, Share

__all__ = [
    "Extract",
    "JsonRequest",
    "LabelSource",
    "LiveTraffic",
    "RequestShape",
    "Traffic",
    "TrafficConfig",
    "V2Request",
    "traffic_mode",
]


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
            parse_path(v, wildcards=False)
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


def _http(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// URL, got {url!r}")
    return url
