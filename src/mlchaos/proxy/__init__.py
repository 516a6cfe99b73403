"""The fault proxy (placeholder: filled in by the proxy work)."""

from mlchaos.proxy._config import Address, ArmKey, ArmSplit, ControlConfig, Protocol, ProxyConfig
from mlchaos.proxy._rules import (
    HTTP_RULES,
    TCP_RULES,
    AbortRule,
    BandwidthRule,
    BlackholeRule,
    FaultArm,
    LatencyRule,
    RefuseRule,
    ResetRule,
    Rule,
)

__all__ = [
    "HTTP_RULES",
    "TCP_RULES",
    "AbortRule",
    "Address",
    "ArmKey",
    "ArmSplit",
    "BandwidthRule",
    "BlackholeRule",
    "ControlConfig",
    "FaultArm",
    "LatencyRule",
    "Protocol",
    "ProxyConfig",
    "RefuseRule",
    "ResetRule",
    "Rule",
]
