"""Toxiproxy's toxics as mlchaos rules: the JSON a Toxiproxy client sends, checked the way
Toxiproxy checks it, and the rule each toxic becomes on the proxy it is added to.

A toxic is ``{"name", "type", "stream", "toxicity", "attributes"}``: ``stream`` is
``upstream`` or ``downstream`` (default), ``toxicity`` the chance that a connection gets it
(default 1), ``attributes`` the type's integer fields (times in milliseconds, the slicer's
delay in microseconds, bandwidth in KB/s). Unknown attributes are ignored and missing ones are
0, as Toxiproxy's JSON decoding does. mlchaos adds one attribute, ``arm`` (``experiment``,
``control`` or ``all``, the default), that aims the toxic at one arm of the proxy's traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from mlchaos.proxy._config import Protocol
from mlchaos.proxy._rules import FaultArm, Rule

__all__ = ["TOXIC_ATTRIBUTES", "Toxic", "ToxicError", "parse_toxic", "toxic_rule", "update_toxic"]

TOXIC_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "slow_close": ("delay",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
}
# What an HTTP proxy can do of them: it relays whole requests, not bytes.
_HTTP_TOXICS = {"latency", "timeout", "reset_peer"}
_ARMS = {a.value for a in FaultArm}
_RULE = TypeAdapter[Rule](Rule)


class ToxicError(ValueError):
    """A toxic Toxiproxy would refuse too: ``status`` is Toxiproxy's for it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Toxic:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, int] = field(default_factory=dict)
    arm: FaultArm = FaultArm.ALL

    def json(self) -> dict[str, Any]:
        attributes: dict[str, Any] = dict(self.attributes)
        if self.arm is not FaultArm.ALL:
            attributes["arm"] = self.arm.value
        return {
            "attributes": attributes,
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }


def parse_toxic(body: object) -> Toxic:
    """A new toxic from the body of ``POST /proxies/{name}/toxics``."""
    if not isinstance(body, dict):
        raise ToxicError("bad request body: expected a JSON object")
    kind = body.get("type")
    stream = body.get("stream", "downstream")
    if stream not in ("upstream", "downstream"):
        raise ToxicError("stream was invalid, can be either upstream or downstream")
    if not isinstance(kind, str) or kind not in TOXIC_ATTRIBUTES:
        raise ToxicError(
            f"invalid toxic type: {kind!r} (mlchaos serves {', '.join(TOXIC_ATTRIBUTES)})"
        )
    name = body.get("name") or f"{kind}_{stream}"
    if not isinstance(name, str):
        raise ToxicError("bad request body: name must be a string")
    toxic = Toxic(name, kind, stream, 1.0, dict.fromkeys(TOXIC_ATTRIBUTES[kind], 0))
    return update_toxic(toxic, body)


def update_toxic(toxic: Toxic, body: object) -> Toxic:
    """``toxic`` with the ``attributes`` and ``toxicity`` of ``body`` (others unchanged)."""
    if not isinstance(body, dict):
        raise ToxicError("bad request body: expected a JSON object")
    toxicity = body.get("toxicity", toxic.toxicity)
    if isinstance(toxicity, bool) or not isinstance(toxicity, int | float):
        raise ToxicError("bad request body: toxicity must be a number")
    if not 0.0 <= toxicity <= 1.0:
        raise ToxicError(f"bad request body: toxicity must be within 0 and 1, got {toxicity}")
    given = body.get("attributes", {})
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ToxicError("bad request body: attributes must be a JSON object")
    attributes = dict(toxic.attributes)
    for key in TOXIC_ATTRIBUTES[toxic.type]:
        if key in given:
            value = given[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ToxicError(f"bad request body: attribute {key!r} must be an integer")
            attributes[key] = value
    arm = given.get("arm", toxic.arm.value)
    if arm not in _ARMS:
        raise ToxicError(f"attribute 'arm' must be one of {', '.join(sorted(_ARMS))}")
    return Toxic(toxic.name, toxic.type, toxic.stream, float(toxicity), attributes, FaultArm(arm))


def toxic_rule(toxic: Toxic, protocol: Protocol) -> Rule:
    """The rule that does what ``toxic`` does, on a proxy of ``protocol``."""
    a = toxic.attributes
    if any(v < 0 for v in a.values()):
        raise ToxicError("attributes must not be negative")
    common: dict[str, Any] = {"arm": toxic.arm.value, "probability": toxic.toxicity}
    if protocol is Protocol.HTTP:
        if toxic.type not in _HTTP_TOXICS:
            raise ToxicError(
                f"toxic type {toxic.type!r} does not apply to an http proxy, which relays "
                f"whole requests (it takes {', '.join(sorted(_HTTP_TOXICS))})"
            )
        if toxic.type != "latency" and a["timeout"]:
            raise ToxicError(f"an http proxy takes {toxic.type} with timeout 0 only")
    else:
        common["stream"] = toxic.stream
    data: dict[str, Any]
    match toxic.type:
        case "latency":  # Toxiproxy: latency ± jitter, uniform
            low = max(0, a["latency"] - a["jitter"])
            data = {"type": "latency", "delay": f"{low}ms"}
            data["jitter"] = f"{a['latency'] + a['jitter'] - low}ms"
        case "bandwidth":
            if a["rate"] <= 0:
                raise ToxicError("bandwidth: rate must be at least 1 (KB/s)")
            data = {"type": "bandwidth", "bytes_per_second": a["rate"] * 1000}
        case "slow_close":
            data = {"type": "slow_close", "delay": f"{a['delay']}ms"}
        case "timeout":
            data = {"type": "timeout", "close_after": f"{a['timeout']}ms"}
            if protocol is Protocol.HTTP:
                data = {"type": "hang"}
        case "reset_peer":
            data = {"type": "reset"}
            if protocol is Protocol.TCP:
                data["after"] = f"{a['timeout']}ms"
        case "slicer":
            data = {
                "type": "slicer",
                "average_size": a["average_size"],
                "size_variation": a["size_variation"],
                "delay": f"{a['delay'] / 1000}ms",
            }
        case _:  # limit_data
            data = {"type": "limit_data", "bytes": a["bytes"]}
    try:
        return _RULE.validate_python(data | common)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise ToxicError(f"{toxic.type}: {problems}") from None
