"""Injectors the runner drives: check, inject, renew, remove, verify removed."""

from mlchaos.faults._base import Injector
from mlchaos.faults._build import build_injector
from mlchaos.faults._process import AgentInjector, KillInjector
from mlchaos.faults._proxy import ProxyFaultInjector

__all__ = [
    "AgentInjector",
    "Injector",
    "KillInjector",
    "ProxyFaultInjector",
    "build_injector",
]
