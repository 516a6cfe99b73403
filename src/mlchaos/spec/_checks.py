"""Checks in an experiment file: metric checks (hypothesis, guardrails) and steady-state probes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlchaos.arms import Arm
from mlchaos.units import Duration, NonNegativeDuration, ParsedValue, PositiveDuration, Share

__all__ = [
    "Bound",
    "BoundKind",
    "Check",
    "HttpProbe",
    "Judge",
    "Metric",
    "MetricCheck",
    "Probe",
    "PromqlProbe",
    "TcpProbe",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Metric(StrEnum):
    """What a metric check measures over the observations of one arm."""

    ERROR_RATE = "error_rate"
    LATENCY_P50 = "latency_p50"
    LATENCY_P95 = "latency_p95"
    LATENCY_P99 = "latency_p99"
    ACCURACY = "accuracy"
    PRECISION = "precision"  # of predicted positives (class 1), the share truly positive
    RECALL = "recall"  # of true positives (label 1), the share predicted positive
    AUC = "auc"  # ROC AUC of the scores against 0/1 labels (DeLong interval)
    PREDICTION_DRIFT = "prediction_drift"  # KS distance of the predictions from control's
    MODEL_SHARE = "model_share"
    DEGRADED_SHARE = "degraded_share"
    FEATURE_AGE_P50 = "feature_age_p50"
    FEATURE_AGE_P95 = "feature_age_p95"
    FEATURE_AGE_P99 = "feature_age_p99"

    @property
    def is_latency(self) -> bool:
        return self.value.startswith("latency_")

    @property
    def is_feature_age(self) -> bool:
        return self.value.startswith("feature_age_")

    @property
    def quantile(self) -> float:
        return int(self.value.rsplit("_p", 1)[1]) / 100.0


class Judge(StrEnum):
    """Judge a check on its confidence interval (default) or on the point estimate."""

    INTERVAL = "interval"
    POINT = "point"


class BoundKind(StrEnum):
    PERCENT = "percent"  # proportions and their differences, e.g. "5%", "-3%"
    TIME = "time"  # latency, e.g. "250ms"
    RATIO = "ratio"  # latency against control, e.g. "1.5x"


_RATIO = re.compile(r"(\d+(?:\.\d+)?)\s*x")
_PERCENT = re.compile(r"([+-]?\d+(?:\.\d+)?)\s*%")


@dataclass(frozen=True)
class Bound(ParsedValue):
    """A limit in a check: a signed percentage, a duration or a ratio, as written in the file."""

    kind: BoundKind
    value: float  # fraction for PERCENT, seconds for TIME, factor for RATIO

    @classmethod
    def parse(cls, value: object) -> Bound:
        if isinstance(value, str):
            text = value.strip()
            if m := _PERCENT.fullmatch(text):
                return cls(BoundKind.PERCENT, float(m.group(1)) / 100.0)
            if m := _RATIO.fullmatch(text):
                return cls(BoundKind.RATIO, float(m.group(1)))
            try:
                return cls(BoundKind.TIME, Duration.parse(text).seconds)
            except ValueError:
                pass
        raise ValueError(f"expected a bound such as '5%', '-2%', '250ms' or '1.5x', got {value!r}")

    def __str__(self) -> str:
        if self.kind is BoundKind.PERCENT:
            return f"{Share(abs(self.value))}" if self.value >= 0 else f"-{Share(-self.value)}"
        if self.kind is BoundKind.TIME:
            return str(Duration(self.value))
        return f"{self.value:g}x"

    json_pattern: ClassVar[str] = r"^([+-]?\d+(\.\d+)?\s*%|\d+(\.\d+)?\s*x|.*(us|ms|s|m|h))$"
    json_examples: ClassVar[list[str]] = ["5%", "-2%", "250ms", "1.5x"]


class MetricCheck(_Model):
    """A bound on one arm's metric, or on its difference (ratio for latency) against control.

    In the hypothesis a check *holds* when its interval lies inside the bounds; as a guardrail it
    *trips* when its interval lies wholly outside them (``judge: point`` uses the estimate).
    """

    name: str | None = None
    metric: Metric
    arm: Arm = Arm.EXPERIMENT
    relative_to: Literal["control", "baseline"] | None = Field(
        None,
        description="compare with the control arm, or (hypothesis only) with the same arm "
        "before the first fault went in — robust when the whole machine is slower: "
        "difference (rates) or ratio (latency)",
    )
    model: str | None = Field(None, description="the answering model, for metric model_share")
    kind: str | None = Field(
        None,
        description="for degraded_share: only this kind (e.g. cached_features); default: any",
    )
    max: Bound | None = None
    min: Bound | None = None
    judge: Judge = Judge.INTERVAL
    min_samples: int = Field(
        0, ge=0, description="fewer observations than this: no verdict (guardrails do not trip)"
    )
    settle: NonNegativeDuration = Field(
        Duration(0.0),
        description="in the hypothesis, leave out requests sent within this time after each "
        "fault's injection: the degraded state must be in place by then",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.max is None and self.min is None:
            raise ValueError("give 'max', 'min' or both")
        if self.metric is Metric.MODEL_SHARE and not self.model:
            raise ValueError("metric 'model_share' needs 'model' (which model's share)")
        if self.relative_to == "control" and self.arm is Arm.CONTROL:
            raise ValueError("a check relative to control must be on the experiment arm")
        if self.metric is Metric.PREDICTION_DRIFT and self.relative_to is None:
            raise ValueError(
                "prediction_drift is the distance of the arm's predictions from another "
                "sample's: set relative_to: control (or baseline)"
            )
        if self.relative_to is not None and self.metric.is_feature_age:
            raise ValueError("feature age is bounded absolutely, not relative to another sample")
        if self.kind is not None and self.metric is not Metric.DEGRADED_SHARE:
            raise ValueError("'kind' applies to metric 'degraded_share' only")
        if self.max is not None and self.min is not None and self.min.value > self.max.value:
            raise ValueError(f"'min' ({self.min}) is above 'max' ({self.max})")
        return self

    @field_validator("max", "min")
    @classmethod
    def _bound_kind(cls, bound: Bound | None, info: ValidationInfo) -> Bound | None:
        """A bound written for another kind of metric, reported at the bound's own line."""
        metric = info.data.get("metric")
        if bound is None or not isinstance(metric, Metric):
            return bound
        want = _bound_kind(metric, info.data.get("relative_to"))
        if bound.kind is not want:
            example = {"percent": "'5%'", "time": "'250ms'", "ratio": "'1.5x'"}[want]
            raise ValueError(f"{metric.value} must be written like {example}, got '{bound}'")
        return bound

    @property
    def bound_kind(self) -> BoundKind:
        return _bound_kind(self.metric, self.relative_to)

    def describe(self) -> str:
        """A readable name: the given one, or one made from the metric."""
        if self.name:
            return self.name
        what = self.metric.value + (
            f"[{self.model or self.kind}]" if self.model or self.kind else ""
        )
        if self.relative_to:
            op = "/" if self.metric.is_latency else "-"
            return f"{what} {self.arm.value} {op} {self.relative_to}"
        return f"{what} {self.arm.value}"


class HttpProbe(_Model):
    """Steady state holds when ``url`` answers with an expected status within ``timeout``."""

    type: Literal["http"] = "http"
    name: str
    url: str
    method: Literal["GET", "POST", "HEAD"] = "GET"
    expect_status: list[int] = [200]
    timeout: PositiveDuration = Duration(2.0)
    max_latency: PositiveDuration | None = None

    @model_validator(mode="before")
    @classmethod
    def _status_list(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("expect_status"), int):
            return {**value, "expect_status": [value["expect_status"]]}
        return value


class TcpProbe(_Model):
    """Steady state holds when ``address`` accepts a TCP connection within ``timeout``."""

    type: Literal["tcp"]
    name: str
    address: str
    timeout: PositiveDuration = Duration(2.0)


class PromqlProbe(_Model):
    """A PromQL query against a Prometheus HTTP API: holds when every series it returns
    compares with ``value`` as ``op`` says (within ``tolerance``); no series is no data, which
    fails. In the steady state it is a probe; in the hypothesis it is evaluated as the traffic
    ends, while the faults are still in place."""

    type: Literal["promql"]
    name: str
    url: str = Field(description="Prometheus base URL, e.g. http://127.0.0.1:9090")
    query: str = Field(min_length=1, description="a PromQL instant query")
    op: Literal["<", "<=", ">", ">=", "==", "!="] = "<="
    value: float
    tolerance: float = Field(0.0, ge=0, description="slack allowed around value")
    timeout: PositiveDuration = Duration(5.0)

    def holds(self, sample: float) -> bool:
        """Whether one series' value compares as required (NaN never does)."""
        v, t = self.value, self.tolerance
        match self.op:
            case "<":
                return sample < v + t
            case "<=":
                return sample <= v + t
            case ">":
                return sample > v - t
            case ">=":
                return sample >= v - t
            case "==":
                return abs(sample - v) <= t
            case _:
                return abs(sample - v) > t

    def describe(self) -> str:
        slack = f" ± {self.tolerance:g}" if self.tolerance else ""
        return f"{self.query} {self.op} {self.value:g}{slack}"


def type_or_http(value: Any) -> str:
    """Discriminator for unions whose ``type`` may be left out and then means ``http``."""
    if isinstance(value, dict):
        return str(value.get("type", "http"))
    return str(getattr(value, "type", "http"))


Probe = Annotated[
    Annotated[HttpProbe, Tag("http")]
    | Annotated[TcpProbe, Tag("tcp")]
    | Annotated[PromqlProbe, Tag("promql")],
    Discriminator(type_or_http),
]


def _check_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "promql" if kind == "promql" else "metric"


Check = Annotated[
    Annotated[MetricCheck, Tag("metric")] | Annotated[PromqlProbe, Tag("promql")],
    Discriminator(_check_kind),
]


def _bound_kind(metric: Metric, relative_to: str | None) -> BoundKind:
    if metric.is_latency:
        return BoundKind.RATIO if relative_to else BoundKind.TIME
    if metric.is_feature_age:
        return BoundKind.TIME
    return BoundKind.PERCENT
