"""The active fault table: rules under leases, and the per-arm plans the data planes read.

Every fault is added with a lease. A ``loop.call_at`` timer removes it when the lease ends,
unless the injector renews it first, so a runner that dies (even ``kill -9``) leaves nothing
behind once one lease has passed.

The data planes never scan the table per request. The HTTP plane asks :meth:`http_plan` for
the rules of one arm (cached until the table changes); the TCP plane subscribes with
:meth:`subscribe` and re-plans its open connections when the rules change.
"""

from __future__ import annotations

import asyncio
import builtins
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from mlchaos.arms import ArmCode
from mlchaos.errors import ConfigError
from mlchaos.proxy._config import Protocol
from mlchaos.proxy._rules import (
    DATA_RULES,
    HTTP_RULES,
    TCP_RULES,
    BandwidthRule,
    FaultArm,
    LatencyRule,
    Rule,
    http_problem,
)
from mlchaos.proxy._stats import ARM_NAMES
from mlchaos.units import Duration

__all__ = ["ActiveFault", "FaultTable", "HttpPlan", "UnknownFaultError"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

# Order in which the HTTP plane tries the faults that replace the answer; the first that fires
# wins. Latency is not in this list: it delays the request and combines with any of them.
_TERMINAL_ORDER = {"reset": 0, "hang": 1, "blackhole": 1, "abort": 2}


class UnknownFaultError(LookupError):
    """No active fault has this id (it was removed, or its lease ended)."""


class ActiveFault(BaseModel):
    """A snapshot of one active fault, as the control API lists it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    rule: Rule
    lease: Duration
    expires_in: float
    applied: int = Field(0, description="requests (http) or connections (tcp) it changed")
    hits: dict[str, int] = Field({}, description="the same, per arm (none/experiment/control)")


@dataclass(eq=False, slots=True)
class FaultEntry:
    """One active fault inside the table (mutable: its expiry moves when renewed)."""

    id: str
    rule: Rule
    lease: Duration
    expires_at: float
    seq: int
    probability: float
    handle: asyncio.TimerHandle | None = None
    hits: list[int] = field(default_factory=lambda: [0, 0, 0])  # per ArmCode
    arms: frozenset[int] = field(default_factory=frozenset)
    delay: float = 0.0
    jitter: float = 0.0
    rate: float = 0.0


class HttpPlan(NamedTuple):
    """The rules one arm's requests meet: answer-replacing faults in order, then latencies,
    then data faults (body rewrites) on what is forwarded."""

    terminal: tuple[FaultEntry, ...]
    latency: tuple[FaultEntry, ...]
    data: tuple[FaultEntry, ...] = ()


_EMPTY_PLAN = HttpPlan((), ())
_ARMS_OF = {
    FaultArm.EXPERIMENT: frozenset({ArmCode.EXPERIMENT}),
    FaultArm.CONTROL: frozenset({ArmCode.CONTROL}),
    FaultArm.ALL: frozenset({ArmCode.NONE, ArmCode.EXPERIMENT, ArmCode.CONTROL}),
}


class FaultTable:
    """Active faults of one proxy, each removed by the proxy itself when its lease ends."""

    def __init__(
        self,
        protocol: Protocol,
        default_lease: Duration | None = None,
        max_lease: Duration | None = None,
    ) -> None:
        self.protocol = protocol
        self.default_lease = Duration(5.0) if default_lease is None else default_lease
        self.max_lease = Duration(300.0) if max_lease is None else max_lease
        self.allowed = HTTP_RULES if protocol is Protocol.HTTP else TCP_RULES
        self._entries: dict[str, FaultEntry] = {}
        self._seq = 0
        self._plans: list[HttpPlan] | None = None
        self._listeners: list[Callable[[], None]] = []
        self.version = 0
        """Bumped on every change of the set of rules (not on renewals)."""

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, fault_id: object) -> bool:
        return fault_id in self._entries

    # -- changes -------------------------------------------------------------------------------

    @property
    def injected(self) -> int:
        """How many faults have been added (replacements included) since the proxy started."""
        return self._seq

    def add(self, rule: Rule, lease: Duration | None = None, fault_id: str | None = None) -> str:
        """Activate ``rule`` for ``lease`` (the default lease when None); returns its id.

        Adding under an id that is already active replaces that fault (rule and lease), so an
        injector that retries after a lost answer does not stack two faults.
        """
        if rule.type not in self.allowed:
            mode = self.protocol.value
            raise ConfigError(
                f"rule type '{rule.type}' does not apply in {mode} mode; "
                f"{mode} rules are: {', '.join(sorted(self.allowed))}"
            )
        problem = http_problem(rule) if self.protocol is Protocol.HTTP else None
        if problem is not None:
            raise ConfigError(problem)
        lease = self._check_lease(lease)
        if fault_id is None:
            fault_id = secrets.token_hex(6)
        elif not _ID.fullmatch(fault_id):
            raise ConfigError(
                f"fault id {fault_id!r} is not valid: use 1-128 letters, digits, '.', '_', ':' "
                "or '-', starting with a letter or digit"
            )
        old = self._entries.pop(fault_id, None)
        if old is not None and old.handle is not None:
            old.handle.cancel()
        loop = asyncio.get_running_loop()
        self._seq += 1
        entry = FaultEntry(
            id=fault_id,
            rule=rule,
            lease=lease,
            expires_at=loop.time() + lease.seconds,
            seq=self._seq,
            probability=rule.probability.fraction,
            arms=_ARMS_OF[rule.arm],
        )
        if isinstance(rule, LatencyRule):
            entry.delay, entry.jitter = rule.delay.seconds, rule.jitter.seconds
        elif isinstance(rule, BandwidthRule):
            entry.rate = float(rule.bytes_per_second)
        entry.handle = loop.call_at(entry.expires_at, self._expire, entry)
        self._entries[fault_id] = entry
        self._changed()
        return fault_id

    def renew(self, fault_id: str, lease: Duration | None = None) -> ActiveFault:
        """Extend a fault's life to ``lease`` from now; raises :class:`UnknownFaultError`."""
        entry = self._get(fault_id)
        lease = self._check_lease(lease)
        loop = asyncio.get_running_loop()
        if entry.handle is not None:
            entry.handle.cancel()
        entry.lease = lease
        entry.expires_at = loop.time() + lease.seconds
        entry.handle = loop.call_at(entry.expires_at, self._expire, entry)
        return self._snapshot(entry, loop.time())

    def remove(self, fault_id: str) -> ActiveFault:
        """Deactivate a fault now; its last snapshot (what it changed, in total). Raises
        :class:`UnknownFaultError` if it is not active."""
        entry = self._get(fault_id)
        self._drop(entry)
        return self._snapshot(entry, asyncio.get_running_loop().time())

    def clear(self) -> int:
        """Deactivate every fault; returns how many there were."""
        count = len(self._entries)
        for entry in self._entries.values():
            if entry.handle is not None:
                entry.handle.cancel()
        self._entries.clear()
        if count:
            self._changed()
        return count

    # -- reading -------------------------------------------------------------------------------

    def get(self, fault_id: str) -> ActiveFault:
        entry = self._get(fault_id)
        return self._snapshot(entry, asyncio.get_running_loop().time())

    def list(self) -> builtins.list[ActiveFault]:
        """Snapshots of the active faults, oldest first."""
        now = asyncio.get_running_loop().time()
        return [self._snapshot(e, now) for e in self._entries.values()]

    def entries(self) -> builtins.list[FaultEntry]:
        """The live entries, oldest first (for the data planes)."""
        return list(self._entries.values())

    def http_plan(self, arm: int) -> HttpPlan:
        """The rules that meet a request of ``arm`` (an :class:`ArmCode`), cached per change."""
        plans = self._plans
        if plans is None:
            plans = self._plans = [self._build_plan(a) for a in ArmCode]
        return plans[arm]

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after every change of the rules; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # -- internals -----------------------------------------------------------------------------

    def _check_lease(self, lease: Duration | None) -> Duration:
        lease = self.default_lease if lease is None else lease
        if lease.seconds <= 0:
            raise ConfigError(f"a lease must be positive, got {lease}")
        if lease.seconds > self.max_lease.seconds:
            raise ConfigError(
                f"a lease of {lease} is over this proxy's maximum of {self.max_lease} "
                "(control.max_lease): a fault must not outlive its runner for long"
            )
        return lease

    def _get(self, fault_id: str) -> FaultEntry:
        entry = self._entries.get(fault_id)
        if entry is None:
            raise UnknownFaultError(f"no active fault with id {fault_id!r}")
        return entry

    def _expire(self, entry: FaultEntry) -> None:
        if self._entries.get(entry.id) is entry:
            entry.handle = None
            self._drop(entry)

    def _drop(self, entry: FaultEntry) -> None:
        if entry.handle is not None:
            entry.handle.cancel()
            entry.handle = None
        del self._entries[entry.id]
        self._changed()

    def _changed(self) -> None:
        self.version += 1
        self._plans = None
        for listener in list(self._listeners):
            listener()

    def _build_plan(self, arm: int) -> HttpPlan:
        if not self._entries:
            return _EMPTY_PLAN
        mine = [e for e in self._entries.values() if arm in e.arms]
        terminal = sorted(
            (e for e in mine if e.rule.type in _TERMINAL_ORDER),
            key=lambda e: (_TERMINAL_ORDER[e.rule.type], e.seq),
        )
        latency = [e for e in mine if e.rule.type == "latency"]
        data = [e for e in mine if e.rule.type in DATA_RULES]
        return HttpPlan(tuple(terminal), tuple(latency), tuple(data))

    @staticmethod
    def _snapshot(entry: FaultEntry, now: float) -> ActiveFault:
        return ActiveFault(
            id=entry.id,
            rule=entry.rule,
            lease=entry.lease,
            expires_in=max(0.0, round(entry.expires_at - now, 3)),
            applied=sum(entry.hits),
            hits=dict(zip(ARM_NAMES, entry.hits, strict=True)),
        )
