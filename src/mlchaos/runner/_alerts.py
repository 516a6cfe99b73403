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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlchaos.analysis import CheckResult, CheckStatus
from mlchaos.spec import Judge
from mlchaos.stats import Estimate

if TYPE_CHECKING:
    import aiohttp

    from mlchaos.observe._alertmanager import WebhookReceiver
    from mlchaos.runner._clock import Clock
    from mlchaos.spec import Alerts, ExpectedAlert
    from mlchaos.units import Duration

__all__ = ["AlertWatch"]

_CALL_LIMIT_S = 2.0


@dataclass
class _Seen:
    expected: ExpectedAlert
    fired_at: float | None = None  # monotonic, first firing after injection
    resolved_at: float | None = None  # monotonic, first poll after rollback not firing
    before_injection: bool = False  # firing before anything was injected
    notified_at: float | None = None  # monotonic, first firing notification (its receiver)
    notify_resolved_at: float | None = None  # monotonic, first resolved one after rollback
    elsewhere: set[str] = field(default_factory=set)  # other receivers that were notified
    # The alert's series (one per label set: e.g. one per proxy) as last notified; it is
    # resolved when every one of them is.
    series: dict[tuple[tuple[str, str], ...], str] = field(default_factory=dict)
    why_not: str | None = None  # Alertmanager's account, while the notification is missing

    def waits_for_notification(self) -> bool:
        return (
            self.expected.notify is not None
            and self.fired_at is not None
            and (self.notified_at is None or self.notify_resolved_at is None)
        )


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
        self._webhook: WebhookReceiver | None = None
        self.webhook_error: str | None = None
        self._read = 0  # notifications already matched
        if spec.webhook is not None and any(e.notify is not None for e in spec.expect):
            from mlchaos.observe._alertmanager import WebhookReceiver  # noqa: PLC0415

            self._webhook = WebhookReceiver(spec.webhook.host, spec.webhook.port, clock.monotonic)

    async def start(self) -> None:
        """Start the webhook receiver (when a check needs it) and the polling."""
        if self._webhook is not None:
            try:
                await self._webhook.start()
            except OSError as exc:
                self.webhook_error = (
                    f"cannot listen on {self.spec.webhook} for Alertmanager's notifications: "
                    f"{exc.strerror or exc}"
                )
                self._webhook = None
        self._task = asyncio.create_task(self._loop(), name="alerts")

    def mark_injected(self) -> None:
        """The first fault went in (later ones do not move it)."""
        if self.injected_at is None:
            self.injected_at = self._clock.monotonic()

    def mark_rollback(self) -> None:
        self.rollback_at = self._clock.monotonic()

    async def finish(self) -> None:
        """Keep watching until every alert that fired has resolved, and has been notified and
        its resolution too (with ``notify``), or may no longer be in time, then stop."""
        deadline = self._deadline()
        while deadline is not None and self._clock.monotonic() < deadline:
            await self._clock.sleep(self.spec.interval.seconds)
            deadline = self._deadline()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._webhook is not None:
            self._read_notifications()
            await self._webhook.stop()

    def _deadline(self) -> float | None:
        """Until when to keep watching: the latest bound of what is still awaited (None when
        nothing is)."""
        if self.rollback_at is None:
            return None
        ends = [
            self.rollback_at + s.expected.resolve_within.seconds
            for s in self._seen
            if s.fired_at is not None and s.resolved_at is None
        ]
        if self._webhook is not None and self.injected_at is not None:
            for s in self._seen:
                notify = s.expected.notify
                if notify is None or not s.waits_for_notification():
                    continue
                if s.notified_at is None:  # its resolution is not awaited without it
                    ends.append(self.injected_at + notify.within.seconds)
                else:
                    ends.append(self.rollback_at + notify.resolved_within.seconds)
        return max(ends, default=None)

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
        if self._webhook is not None:
            self._read_notifications()
            await self._ask_why()

    def _read_notifications(self) -> None:
        """Match the notifications that came since the last poll to the expected alerts."""
        from mlchaos.observe._alertmanager import matches  # noqa: PLC0415

        assert self._webhook is not None
        new = self._webhook.notifications[self._read :]
        self._read += len(new)
        for n in new:
            for seen in self._seen:
                e, notify = seen.expected, seen.expected.notify
                if notify is None or not matches(n.labels, e.name, e.labels):
                    continue
                injected, rollback = self.injected_at, self.rollback_at
                if n.receiver != notify.receiver:
                    seen.elsewhere.add(n.receiver)
                    continue
                if injected is None or n.at < injected:
                    continue
                seen.series[tuple(sorted(n.labels.items()))] = n.status
                if n.status == "firing":
                    seen.notified_at = seen.notified_at or n.at
                elif (
                    seen.notified_at is not None
                    and rollback is not None
                    and all(status == "resolved" for status in seen.series.values())
                ):
                    seen.notify_resolved_at = seen.notify_resolved_at or n.at

    async def _ask_why(self) -> None:
        """For each alert firing during the faults and still waiting for its notification,
        Alertmanager's account of why (the last one is the check's detail). After rollback the
        alert resolves and Alertmanager forgets it: what it said while it fired stands."""
        from mlchaos.observe._alertmanager import AlertmanagerError, explain  # noqa: PLC0415

        url = self.spec.alertmanager
        if url is None or self.rollback_at is not None:
            return
        for seen in self._seen:
            notify = seen.expected.notify
            if notify is None or seen.fired_at is None or seen.notified_at is not None:
                continue
            try:
                seen.why_not = await explain(
                    self._session,
                    url,
                    seen.expected.name,
                    seen.expected.labels,
                    notify.receiver,
                    _CALL_LIMIT_S,
                )
            except AlertmanagerError as exc:
                seen.why_not = str(exc)

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
                    **self._notify_record(s),
                }
            )
        return out

    def _notify_record(self, s: _Seen) -> dict[str, Any]:
        notify = s.expected.notify
        if notify is None:
            return {}
        return {
            "notify_receiver": notify.receiver,
            "notified_at": self._wall(s.notified_at),
            "notify_resolved_at": self._wall(s.notify_resolved_at),
            "time_to_notify_s": _since(self.injected_at, s.notified_at),
            "time_to_notify_resolved_s": _since(self.rollback_at, s.notify_resolved_at),
            "notified_elsewhere": sorted(s.elsewhere),
            "why_not_notified": s.why_not if s.notified_at is None else None,
        }

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
            title = f"alert {name} fires within {e.fire_within}"
            if s.before_injection:
                why = "it was already firing before injection"
                out.append(_result(title, CheckStatus.VIOLATED, detect, f"<= {e.fire_within}", why))
            else:
                missing = f"it did not fire ({self.polls} polls)"
                out.append(
                    _timed(title, detect, e.fire_within, missing, "fired {:.1f}s after injection")
                )
            if detect is None:
                continue
            out.append(
                _timed(
                    f"alert {name} resolves within {e.resolve_within}",
                    _since(self.rollback_at, s.resolved_at),
                    e.resolve_within,
                    f"still firing {e.resolve_within} after rollback",
                    "resolved {:.1f}s after rollback began",
                )
            )
            out += self._notify_results(s)
        return out

    def _notify_results(self, s: _Seen) -> list[CheckResult]:
        """The ``notify`` checks of an alert that fired: paged within, resolution within."""
        notify = s.expected.notify
        if notify is None:
            return []
        name = s.expected.describe()
        title = f"alert {name} notifies '{notify.receiver}' within {notify.within}"
        resolved_title = (
            f"alert {name}: resolved notification to '{notify.receiver}' within "
            f"{notify.resolved_within}"
        )
        if self.webhook_error is not None:
            return [
                _result(title, CheckStatus.NO_DATA, None, "", self.webhook_error),
                _result(resolved_title, CheckStatus.NO_DATA, None, "", self.webhook_error),
            ]
        notify_s = _since(self.injected_at, s.notified_at)
        why = s.why_not or "no notification came"
        if s.elsewhere:
            why = f"notified {', '.join(sorted(s.elsewhere))} instead; {why}"
        fired = _since(self.injected_at, s.fired_at)
        done = "notified {:.1f}s after injection"
        if fired is not None:
            done += f" (fired at {fired:.1f}s)"
        out = [_timed(title, notify_s, notify.within, f"not notified: {why}", done)]
        if notify_s is None:
            return out
        out.append(
            _timed(
                resolved_title,
                _since(self.rollback_at, s.notify_resolved_at),
                notify.resolved_within,
                f"no resolved notification {notify.resolved_within} after rollback",
                "resolved notification {:.1f}s after rollback began",
            )
        )
        return out


def _matches(alert: dict[str, Any], expected: ExpectedAlert) -> bool:
    from mlchaos.observe._alertmanager import matches  # noqa: PLC0415

    labels = alert.get("labels")
    return isinstance(labels, dict) and matches(labels, expected.name, expected.labels)


def _timed(
    title: str, seconds: float | None, bound: Duration, missing: str, happened: str
) -> CheckResult:
    """A "happens within ``bound``" check: violated when it did not happen (``missing``) or
    took longer; ``happened`` is formatted with the seconds it took."""
    if seconds is None:
        return _result(title, CheckStatus.VIOLATED, None, f"<= {bound}", missing)
    status = CheckStatus.HELD if seconds <= bound.seconds else CheckStatus.VIOLATED
    return _result(title, status, seconds, f"<= {bound}", happened.format(seconds))


def _since(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else max(0.0, end - start)


def _result(
    name: str, status: CheckStatus, seconds: float | None, bounds: str, detail: str
) -> CheckResult:
    estimate = None if seconds is None else Estimate(seconds, seconds, seconds, 1, 1.0)
    return CheckResult(name, status, estimate, bounds, Judge.POINT, detail)
