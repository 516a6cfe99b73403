"""Fakes for testing experiments and the phase machine without sockets, in milliseconds.

- :class:`ManualClock`: virtual time. Sleeping on it advances it: whenever every task that
  waits on it is asleep, it jumps to the earliest wake-up. Use it only for code that waits on
  nothing but this clock (a real socket would see virtual seconds pass in no time).
- :class:`FakeInjector`: records each call, holds an ``active`` flag, and raises what it is
  told to at each step (an ``inject`` that raises *after* the fault is in place, a failing
  verification ...).
- :class:`FakeTraffic`: open-loop traffic on the clock, 50/50 arms, whose experiment arm fails
  while any of the given injectors is active.
- :func:`no_endpoints` and :func:`fake_injectors`: what a :class:`~mlchaos.runner.Runner` opens
  and builds instead of proxies and agents.

A run on fakes::

    clock = ManualClock()
    fault = FakeInjector()
    runner = Runner(exp, base_dir=tmp, journal=Journal(tmp / "j.jsonl"), clock=clock,
                    endpoints=no_endpoints, injector=fake_injectors(fault),
                    traffic=FakeTraffic(clock, [fault], duration=10.0))
    outcome = await runner.run()
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlchaos.arms import ArmCode
from mlchaos.runner import BuildInjector, Endpoints
from mlchaos.traffic import TrafficResult

if TYPE_CHECKING:
    from mlchaos.faults import Injector
    from mlchaos.observations import ObservationStore
    from mlchaos.runner import Event
    from mlchaos.safety import Registry
    from mlchaos.spec import Experiment, Fault

__all__ = ["FakeInjector", "FakeTraffic", "ManualClock", "fake_injectors", "no_endpoints"]

_SETTLE_YIELDS = 50  # loop turns given to runnable tasks before the clock jumps


class ManualClock:
    """Virtual wall and monotonic clocks that advance only by sleeping on them."""

    def __init__(self, epoch: float = 1_800_000_000.0) -> None:
        self._now = 0.0
        self._epoch = epoch
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    def time(self) -> float:
        return self._epoch + self._now

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._order), wake))
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive(), name="manual-clock")
        await wake

    async def _drive(self) -> None:
        """Let every runnable task run until it sleeps again, then wake the earliest sleeper."""
        while True:
            for _ in range(_SETTLE_YIELDS):
                await asyncio.sleep(0)
            while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
                heapq.heappop(self._sleepers)
            if not self._sleepers:
                return
            deadline, _, wake = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            wake.set_result(None)


@dataclass
class FakeInjector:
    """An injector that changes nothing but its ``active`` flag, and records each call.

    ``inject_error`` is raised by :meth:`inject` *after* the fault became active (a proxy that
    applied the rule but whose answer was lost); the other ``*_error`` fields are raised by
    their step before it acts.
    """

    label: str = "fake fault"
    hits: dict[str, int] | None = None
    unit: str = "requests"
    check_error: BaseException | None = None
    inject_error: BaseException | None = None
    renew_error: BaseException | None = None
    remove_error: BaseException | None = None
    verify_error: BaseException | None = None
    active: bool = False
    calls: list[str] = field(default_factory=list)

    async def check(self) -> None:
        self._step("check", self.check_error)

    async def rehearse(self) -> str:
        self._step("rehearse", self.check_error)
        return "rehearsed (fake)"

    async def inject(self) -> None:
        self.calls.append("inject")
        self.active = True
        if self.inject_error is not None:
            raise self.inject_error

    async def renew(self) -> None:
        self._step("renew", self.renew_error)

    async def remove(self) -> None:
        self._step("remove", self.remove_error)
        self.active = False

    async def verify_removed(self) -> bool:
        self._step("verify_removed", self.verify_error)
        return not self.active

    def _step(self, name: str, error: BaseException | None) -> None:
        self.calls.append(name)
        if error is not None:
            raise error


@dataclass
class FakeTraffic:
    """``rate`` requests a second for ``duration`` seconds of the clock, alternating arms;
    while any of ``faults`` is active, the experiment arm's requests fail (HTTP 503). With
    ``control_lost`` = n, every n-th control request never arrives (a split gone wrong)."""

    clock: ManualClock
    faults: Sequence[FakeInjector]
    duration: float
    rate: float = 100.0
    latency: float = 0.005
    error: BaseException | None = None  # raised half way through: a bug in traffic
    control_lost: int = 0

    async def __call__(self, store: ObservationStore) -> TrafficResult:
        start = self.clock.monotonic()
        sent = round(self.duration * self.rate)
        for i in range(sent):  # request i is due at start + i / rate: open loop
            await self.clock.sleep(start + i / self.rate - self.clock.monotonic())
            if self.error is not None and i >= sent // 2:
                raise self.error
            arm = ArmCode.EXPERIMENT if i % 2 == 0 else ArmCode.CONTROL
            if arm == ArmCode.CONTROL and self.control_lost and (i // 2) % self.control_lost == 0:
                continue
            failing = arm == ArmCode.EXPERIMENT and any(f.active for f in self.faults)
            store.add(
                arm=arm,
                start=self.clock.time(),
                latency=self.latency,
                status=503 if failing else 200,
                fault=int(failing),
            )
        await self.clock.sleep(start + self.duration - self.clock.monotonic())
        elapsed = self.clock.monotonic() - start
        return TrafficResult(
            sent=sent,
            completed=sent,
            failed=0,
            dropped=0,
            elapsed=elapsed,
            target_rate=self.rate,
            achieved_rate=sent / elapsed if elapsed else 0.0,
            max_lateness=0.0,
        )


@contextlib.asynccontextmanager
async def no_endpoints(
    exp: Experiment, run_id: str, registry: Registry, emit: Callable[[Event], None]
) -> AsyncIterator[Endpoints]:
    """Open nothing: the experiment's proxies and agents are never contacted."""
    yield Endpoints()


def fake_injectors(*fakes: FakeInjector) -> BuildInjector:
    """Hand the i-th fault of the experiment the i-th fake."""

    def build(fault: Fault, fault_id: str, endpoints: Endpoints) -> Injector:
        index = int(fault_id.rsplit("-", 1)[1])
        return fakes[index]

    return build
