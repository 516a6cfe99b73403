"""Incident response: did the expected alerts fire after injection, and clear after rollback?

:class:`AlertWatch` polls Prometheus' ``/api/v1/alerts`` from the start of the inject phase
until every alert that fired has resolved (or its ``resolve_within`` has passed). An expected
alert matches an active alert with its name and every label it names. Time to detect runs
from the first injection to the first poll that sees the alert *firing* (pending does not
count); time to resolve from the start of rollback to the first poll that no longer sees it
firing. The results are checks in the verdict, like the hypothesis's, and ``alert`` records in
the journal. Every time is taken on the monotonic clock (durations cannot jump with the wall
clock); the records show them as wall times.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlchaos.analysis import CheckResult, CheckStatus
from mlchaos.spec import Judge
from mlchaos.stats import Estimate

if TYPE_CHECKING:
    import aiohttp

    from mlchaos.runner._clock import Clock
    from mlchaos.spec import Alerts, ExpectedAlert

__all__ = ["AlertWatch"]

_CALL_LIMIT_S = 2.0


@dataclass
class _Seen:
    expected: ExpectedAlert
    fired_at: float | None = None  # monotonic, first firing after injection
    resolved_at: float | None = None  # monotonic, first poll after rollback not firing
    before_injection: bool = False  # firing before anything was injected


class AlertWatch:
    """Polls the alerts while the experiment runs; :meth:`results` judges what it saw."""

    def __init__(self, spec: Alerts, session: aiohttp.ClientSession, clock: Clock) -> None:
        self.spec = spec
        self._session = session
        self._clock = clock
        self._wall_offset = clock.time() - clock.monotonic()  # monotonic → wall, for records
        self._seen = [_Seen(e) for e in spec.expect]
        self.injected_at: float | None = None  # monotonic
        self.rollback_at: float | None = None  # monotonic
        self.polls = 0
        self.failures = 0
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="alerts")

    def mark_injected(self) -> None:
        """The first fault went in (later ones do not move it)."""
        if self.injected_at is None:
            self.injected_at = self._clock.monotonic()

    def mark_rollback(self) -> None:
        self.rollback_at = self._clock.monotonic()

    async def finish(self) -> None:
        """Keep watching until every alert that fired has resolved or may no longer resolve in
        time (``resolve_within`` after rollback), then stop."""
        waiting = [s for s in self._seen if s.fired_at is not None and s.resolved_at is None]
        if waiting and self.rollback_at is not None:
            deadline = self.rollback_at + max(s.expected.resolve_within.seconds for s in waiting)
            while self._clock.monotonic() < deadline and any(
                s.resolved_at is None for s in waiting
            ):
                await self._clock.sleep(self.spec.interval.seconds)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await self.poll()
            await self._clock.sleep(self.spec.interval.seconds)

    async def poll(self) -> None:
        from mlchaos.observe._prometheus import PrometheusError, alerts  # noqa: PLC0415

        now = self._clock.monotonic()
        try:
            active = await alerts(self._session, self.spec.prometheus, _CALL_LIMIT_S)
        except PrometheusError as exc:
            self.failures += 1
            self.last_error = str(exc)
            return
        self.polls += 1
        for seen in self._seen:
            firing = any(a.get("state") == "firing" and _matches(a, seen.expected) for a in active)
            if firing and self.injected_at is None:
                seen.before_injection = True
            elif firing and seen.fired_at is None:
                seen.fired_at = now
            elif firing and self.rollback_at is None:
                seen.resolved_at = None  # still (or again) firing during the faults
            elif (
                not firing
                and seen.fired_at is not None
                and seen.resolved_at is None
                and self.rollback_at is not None
            ):
                seen.resolved_at = now

    def records(self) -> list[dict[str, Any]]:
        """One ``alert`` journal record per expected alert."""
        out = []
        for s in self._seen:
            detect = _since(self.injected_at, s.fired_at)
            resolve = _since(self.rollback_at, s.resolved_at)
            out.append(
                {
                    "name": s.expected.describe(),
                    "must_not_fire": s.expected.must_not_fire,
                    "fired_at": self._wall(s.fired_at),
                    "resolved_at": self._wall(s.resolved_at),
                    "time_to_detect_s": detect,
                    "time_to_resolve_s": resolve,
                    "before_injection": s.before_injection,
                    "polls": self.polls,
                    "failed_polls": self.failures,
                }
            )
        return out

    def _wall(self, monotonic: float | None) -> float | None:
        return None if monotonic is None else monotonic + self._wall_offset

    def results(self) -> list[CheckResult]:
        """The alert checks: fires within / resolves within, or does not fire."""
        out: list[CheckResult] = []
        for s in self._seen:
            e = s.expected
            name = e.describe()
            if self.polls == 0:
                why = f"Prometheus never answered ({self.last_error or 'no poll made'})"
                out.append(_result(f"alert {name}", CheckStatus.NO_DATA, None, "", why))
                continue
            if e.must_not_fire:
                fired = s.fired_at is not None or s.before_injection
                status = CheckStatus.VIOLATED if fired else CheckStatus.HELD
                detail = "it fired" if fired else f"silent over {self.polls} polls"
                out.append(_result(f"alert {name} does not fire", status, None, "never", detail))
                continue
            detect = _since(self.injected_at, s.fired_at)
            if s.before_injection:
                status, detail = CheckStatus.VIOLATED, "it was already firing before injection"
            elif detect is None:
                status, detail = CheckStatus.VIOLATED, f"it did not fire ({self.polls} polls)"
            else:
                ok = detect <= e.fire_within.seconds
                status = CheckStatus.HELD if ok else CheckStatus.VIOLATED
                detail = f"fired {detect:.1f}s after injection"
            title = f"alert {name} fires within {e.fire_within}"
            out.append(_result(title, status, detect, f"<= {e.fire_within}", detail))
            if detect is None:
                continue
            resolve = _since(self.rollback_at, s.resolved_at)
            if resolve is None:
                status = CheckStatus.VIOLATED
                detail = f"still firing {e.resolve_within} after rollback"
            else:
                ok = resolve <= e.resolve_within.seconds
                status = CheckStatus.HELD if ok else CheckStatus.VIOLATED
                detail = f"resolved {resolve:.1f}s after rollback began"
            title = f"alert {name} resolves within {e.resolve_within}"
            out.append(_result(title, status, resolve, f"<= {e.resolve_within}", detail))
        return out


def _matches(alert: dict[str, Any], expected: ExpectedAlert) -> bool:
    labels = alert.get("labels")
    if not isinstance(labels, dict) or labels.get("alertname") != expected.name:
        return False
    return all(labels.get(k) == v for k, v in expected.labels.items())


def _since(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else max(0.0, end - start)


def _result(
    name: str, status: CheckStatus, seconds: float | None, bounds: str, detail: str
) -> CheckResult:
    estimate = None if seconds is None else Estimate(seconds, seconds, seconds, 1, 1.0)
    return CheckResult(name, status, estimate, bounds, Judge.POINT, detail)
