"""The fault proxy: an HTTP/1.1 or TCP data plane that faults one arm of traffic.

:class:`ProxyServer` runs one proxy (``listen`` → ``upstream``) with its control API;
:class:`ControlClient` drives that API; rules (:data:`Rule`) say what to do to which arm, and
every active fault lives under a lease in the proxy's :class:`FaultTable`.

Importing this package stays light (the experiment spec imports its models): the data plane,
the fault table, the statistics, the server and the client load on first use.
"""

from typing import TYPE_CHECKING, Any

from mlchaos.proxy._config import Address, ControlConfig, Protocol, ProxyConfig, ToxiproxyConfig
from mlchaos.proxy._rules import (
    HTTP_RULES,
    TCP_RULES,
    AbortRule,
    BandwidthRule,
    BlackholeRule,
    Edit,
    FaultArm,
    LatencyRule,
    LimitDataRule,
    RefuseRule,
    ResetRule,
    RewriteRule,
    Rule,
    SlicerRule,
    SlowCloseRule,
    Stream,
    TimeoutRule,
    Where,
)

if TYPE_CHECKING:
    from mlchaos.proxy._client import ControlClient
    from mlchaos.proxy._faults import ActiveFault, FaultTable, UnknownFaultError
    from mlchaos.proxy._server import ProxyServer, serve_forever
    from mlchaos.proxy._stats import ArmStats, ProxyStats
    from mlchaos.proxy._toxiproxy import ToxiproxyApi

__all__ = [
    "HTTP_RULES",
    "TCP_RULES",
    "AbortRule",
    "ActiveFault",
    "Address",
    "ArmStats",
    "BandwidthRule",
    "BlackholeRule",
    "ControlClient",
    "ControlConfig",
    "Edit",
    "FaultArm",
    "FaultTable",
    "LatencyRule",
    "LimitDataRule",
    "Protocol",
    "ProxyConfig",
    "ProxyServer",
    "ProxyStats",
    "RefuseRule",
    "ResetRule",
    "RewriteRule",
    "Rule",
    "SlicerRule",
    "SlowCloseRule",
    "Stream",
    "TimeoutRule",
    "ToxiproxyApi",
    "ToxiproxyConfig",
    "UnknownFaultError",
    "Where",
    "serve_forever",
]

_LAZY = {
    "ControlClient": "mlchaos.proxy._client",
    "ProxyServer": "mlchaos.proxy._server",
    "serve_forever": "mlchaos.proxy._server",
    "ActiveFault": "mlchaos.proxy._faults",
    "FaultTable": "mlchaos.proxy._faults",
    "UnknownFaultError": "mlchaos.proxy._faults",
    "ArmStats": "mlchaos.proxy._stats",
    "ProxyStats": "mlchaos.proxy._stats",
    "ToxiproxyApi": "mlchaos.proxy._toxiproxy",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlchaos.proxy' has no attribute {name!r}")
    import importlib  # noqa: PLC0415 - on first use only

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
