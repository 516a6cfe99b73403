"""Fault rules: what a proxy does to the requests or connections of one arm.

A rule is pure data (a frozen pydantic model). The control API accepts rules as JSON and the
experiment spec embeds the same models, so a fault means the same thing in both places.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlchaos.units import Duration, NonNegativeDuration, Share

__all__ = [
    "DATA_RULES",
    "HTTP_RULES",
    "TCP_RULES",
    "AbortRule",
    "BandwidthRule",
    "BlackholeRule",
    "Edit",
    "FaultArm",
    "FeastMissingRule",
    "LatencyRule",
    "RefuseRule",
    "ResetRule",
    "RewriteRule",
    "Rule",
]


class FaultArm(StrEnum):
    """Which traffic a rule applies to."""

    EXPERIMENT = "experiment"
    CONTROL = "control"
    ALL = "all"


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    arm: FaultArm = Field(FaultArm.EXPERIMENT, description="the arm whose traffic is faulted")
    probability: Share = Field(
        Share(1.0), description="chance that one request (http) or connection (tcp) is faulted"
    )


class LatencyRule(_Rule):
    """Delay the request (http) or every chunk of data (tcp) by ``delay`` plus up to ``jitter``."""

    type: Literal["latency"]
    delay: NonNegativeDuration
    jitter: NonNegativeDuration = Duration(0.0)


class AbortRule(_Rule):
    """Answer at once with ``status`` and ``body`` without calling the upstream (http only)."""

    type: Literal["abort"]
    status: int = Field(503, ge=200, le=599)
    body: str = '{"error": "injected by mlchaos"}'
    content_type: str = "application/json"


class ResetRule(_Rule):
    """Reset the client's connection (TCP RST) instead of answering."""

    type: Literal["reset"]


class BlackholeRule(_Rule):
    """Accept and never answer, until the client gives up (``hang`` in http mode)."""

    type: Literal["hang", "blackhole"]


class BandwidthRule(_Rule):
    """Limit the throughput of each faulted connection (tcp only)."""

    type: Literal["bandwidth"]
    bytes_per_second: int = Field(gt=0)


class RefuseRule(_Rule):
    """Refuse new connections (tcp only): closed at once with a reset."""

    type: Literal["refuse"]


class Edit(BaseModel):
    """One change to a JSON body at ``path`` (dotted keys, ``[i]`` and ``[*]``): exactly one of
    ``set`` (any JSON value, or the text ``NaN``), ``drop``, or ``scale``/``shift``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    set: Any = None
    drop: bool = False
    scale: float | None = None
    shift: float | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Self:
        from mlchaos.jsonpath import parse_path  # noqa: PLC0415

        parse_path(self.path)
        actions = [
            "set" in self.model_fields_set,
            self.drop,
            self.scale is not None or self.shift is not None,
        ]
        if sum(actions) != 1:
            raise ValueError("give exactly one of 'set', 'drop: true', or 'scale'/'shift'")
        return self


class RewriteRule(_Rule):
    """Rewrite the JSON bodies of faulted requests (``request`` edits, before the upstream sees
    them) and their answers (``response`` edits), and/or replace the answer's ``status``
    (http only). Bodies that are not JSON pass unchanged."""

    type: Literal["rewrite"]
    request: list[Edit] = []
    response: list[Edit] = []
    status: int | None = Field(None, ge=200, le=599)

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not (self.request or self.response or self.status is not None):
            raise ValueError("give 'request' or 'response' edits, or a 'status'")
        return self


class FeastMissingRule(_Rule):
    """In a Feast ``/get-online-features`` answer, make ``features`` (default: all but the entity
    key) missing: every value null with ``status`` (http only). Other answers pass unchanged."""

    type: Literal["feast_missing"]
    features: list[str] | None = Field(None, description="names, or view:name; default: all")
    status: Literal["NOT_FOUND", "NULL_VALUE", "OUTSIDE_MAX_AGE", "INVALID"] = "NOT_FOUND"


Rule = Annotated[
    LatencyRule
    | AbortRule
    | ResetRule
    | BlackholeRule
    | BandwidthRule
    | RefuseRule
    | RewriteRule
    | FeastMissingRule,
    Field(discriminator="type"),
]

DATA_RULES: frozenset[str] = frozenset({"rewrite", "feast_missing"})
HTTP_RULES: frozenset[str] = (
    frozenset({"latency", "abort", "reset", "hang", "blackhole"}) | DATA_RULES
)
TCP_RULES: frozenset[str] = frozenset({"latency", "reset", "blackhole", "bandwidth", "refuse"})
