"""Fault rules: what a proxy does to the requests or connections of one arm.

A rule is pure data (a frozen pydantic model). The control API accepts rules as JSON and the
experiment spec embeds the same models, so a fault means the same thing in both places.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlchaos.units import Duration, NonNegativeDuration, Share

__all__ = [
    "HTTP_RULES",
    "TCP_RULES",
    "AbortRule",
    "BandwidthRule",
    "BlackholeRule",
    "FaultArm",
    "LatencyRule",
    "RefuseRule",
    "ResetRule",
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


Rule = Annotated[
    LatencyRule | AbortRule | ResetRule | BlackholeRule | BandwidthRule | RefuseRule,
    Field(discriminator="type"),
]

HTTP_RULES: frozenset[str] = frozenset({"latency", "abort", "reset", "hang", "blackhole"})
TCP_RULES: frozenset[str] = frozenset({"latency", "reset", "blackhole", "bandwidth", "refuse"})
