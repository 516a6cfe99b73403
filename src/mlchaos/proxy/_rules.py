"""Fault rules: what a proxy does to the requests or connections of one arm.

A rule is pure data (a frozen pydantic model). The control API accepts rules as JSON and the
experiment spec embeds the same models, so a fault means the same thing in both places.
"""

from __future__ import annotations

import re
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
    "LatencyRule",
    "LimitDataRule",
    "RefuseRule",
    "ResetRule",
    "RewriteRule",
    "Rule",
    "SlicerRule",
    "SlowCloseRule",
    "Stream",
    "TimeoutRule",
    "Where",
    "http_problem",
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


class Stream(StrEnum):
    """Which direction of a TCP connection a rule shapes (Toxiproxy's ``stream``)."""

    BOTH = "both"
    UPSTREAM = "upstream"  # what the client sends towards the upstream
    DOWNSTREAM = "downstream"  # what the upstream sends back to the client


class _StreamRule(_Rule):
    stream: Stream = Field(
        Stream.BOTH,
        description="tcp: the direction it shapes: upstream (client → upstream), downstream "
        "(upstream → client) or both; http proxies take only 'both'",
    )


class LatencyRule(_StreamRule):
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


class ResetRule(_StreamRule):
    """Reset the client's connection (TCP RST) instead of answering. In tcp mode: at the first
    data of the rule's stream, or ``after`` that (the data is dropped meanwhile)."""

    type: Literal["reset"]
    after: NonNegativeDuration = Field(Duration(0.0), description="tcp only")


class BlackholeRule(_Rule):
    """Accept and never answer, until the client gives up (``hang`` in http mode)."""

    type: Literal["hang", "blackhole"]


class BandwidthRule(_StreamRule):
    """Limit the throughput of each faulted connection (tcp only)."""

    type: Literal["bandwidth"]
    bytes_per_second: int = Field(gt=0)


class RefuseRule(_Rule):
    """Refuse new connections (tcp only): closed at once with a reset."""

    type: Literal["refuse"]


class SlowCloseRule(_StreamRule):
    """Hold the end of the stream (FIN) back for ``delay`` before passing it on (tcp only)."""

    type: Literal["slow_close"]
    delay: NonNegativeDuration


class TimeoutRule(_StreamRule):
    """Drop every byte of the stream; close the connection after ``close_after`` without data
    (0: never), and when the rule goes (tcp only; Toxiproxy's ``timeout``)."""

    type: Literal["timeout"]
    close_after: NonNegativeDuration = Duration(0.0)


class SlicerRule(_StreamRule):
    """Cut each chunk of the stream into pieces of ``average_size`` ± ``size_variation`` bytes,
    ``delay`` apart (tcp only)."""

    type: Literal["slicer"]
    average_size: int = Field(gt=0)
    size_variation: int = Field(0, ge=0)
    delay: NonNegativeDuration = Duration(0.0)

    @model_validator(mode="after")
    def _variation_below_size(self) -> Self:
        if self.size_variation >= self.average_size:
            raise ValueError("size_variation must be less than average_size")
        return self


class LimitDataRule(_StreamRule):
    """Pass ``bytes`` bytes of the stream, then close the connection (tcp only)."""

    type: Literal["limit_data"]
    bytes: int = Field(ge=0)


class Where(BaseModel):
    """Which indices an edit's ``[?]`` step takes: those of the list at ``names`` whose entry
    (as text) fully matches the regular expression ``pattern``, from index ``skip`` on. For a
    columnar answer (names in one list, the columns in another) it picks columns by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    names: str = Field(description="path to the list of names, e.g. 'metadata.feature_names'")
    pattern: str = Field(max_length=4096, description="regular expression, matched in full")
    skip: int = Field(0, ge=0, description="leading entries never selected (e.g. a key column)")
    not_keys_of: str | None = Field(
        None,
        description="path into the request body to an object whose keys are never selected "
        "(Feast: 'entities', so no join key column is touched)",
    )

    @model_validator(mode="after")
    def _valid(self) -> Self:
        from mlchaos.jsonpath import parse_path  # noqa: PLC0415

        parse_path(self.names, wildcards=False)
        if self.not_keys_of is not None:
            parse_path(self.not_keys_of, wildcards=False)
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"pattern {self.pattern!r}: {exc}") from None
        return self

    def indices(self, document: Any, request: Any = None) -> frozenset[int]:
        from mlchaos.jsonpath import extract, parse_path  # noqa: PLC0415

        names = extract(document, parse_path(self.names))
        if not isinstance(names, list):
            return frozenset()
        keys: object = None
        if self.not_keys_of is not None and request is not None:
            keys = extract(request, parse_path(self.not_keys_of))
        kept = set(keys) if isinstance(keys, dict) else set()
        matches = re.compile(self.pattern).fullmatch
        return frozenset(
            i
            for i, n in enumerate(names)
            if i >= self.skip and str(n) not in kept and matches(str(n))
        )


class Edit(BaseModel):
    """One change to a JSON body at ``path`` (dotted keys, ``[i]``, ``[*]``, and ``[?]`` for the
    indices ``where`` selects): exactly one of ``set`` (any JSON value, or the text ``NaN``),
    ``drop``, or ``scale``/``shift``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    set: Any = None
    drop: bool = False
    scale: float | None = None
    shift: float | None = None
    where: Where | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Self:
        from mlchaos.jsonpath import SELECTED, parse_path  # noqa: PLC0415

        if (SELECTED in parse_path(self.path)) != (self.where is not None):
            raise ValueError("a '[?]' step in the path and 'where' go together")
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


Rule = Annotated[
    LatencyRule
    | AbortRule
    | ResetRule
    | BlackholeRule
    | BandwidthRule
    | RefuseRule
    | SlowCloseRule
    | TimeoutRule
    | SlicerRule
    | LimitDataRule
    | RewriteRule,
    Field(discriminator="type"),
]

DATA_RULES: frozenset[str] = frozenset({"rewrite"})
HTTP_RULES: frozenset[str] = (
    frozenset({"latency", "abort", "reset", "hang", "blackhole"}) | DATA_RULES
)
TCP_RULES: frozenset[str] = frozenset(
    {
        "latency",
        "reset",
        "blackhole",
        "bandwidth",
        "refuse",
        "slow_close",
        "timeout",
        "slicer",
        "limit_data",
    }
)


def http_problem(rule: BaseModel) -> str | None:
    """Why a rule of an HTTP-relayed type cannot run on an HTTP proxy (None when it can): an
    HTTP proxy relays whole requests, so a direction or a delayed reset means nothing there."""
    if getattr(rule, "stream", Stream.BOTH) is not Stream.BOTH:
        return "'stream' applies to tcp proxies; an http proxy delays or faults whole requests"
    if isinstance(rule, ResetRule) and rule.after.seconds:
        return "'after' applies to tcp proxies; an http proxy resets a faulted request at once"
    return None
