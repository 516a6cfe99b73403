"""The clocks a run reads: wall time for records and fault windows, a monotonic clock for
durations, and sleeping. Injected, so the phase machine can run on virtual time in tests
(:class:`mlchaos.testing.ManualClock`)."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    def time(self) -> float:
        """Wall time, seconds since the epoch (stamped on records and fault windows)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (every duration is measured on it)."""

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The machine's clocks and the event loop's sleep."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
