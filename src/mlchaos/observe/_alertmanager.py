"""Alertmanager: a webhook receiver for its notifications, and its API for why one is missing.

:class:`WebhookReceiver` is the HTTP server an Alertmanager ``webhook_configs`` entry points at.
It keeps every notification it is sent (webhook payload version 4): when it came, through which
receiver, and each alert in it with its status (``firing`` or ``resolved``) and labels. It
answers 200 to a well-formed notification and 400 to anything else, so a misconfigured sender
sees its mistake in Alertmanager's log.

:func:`explain` reads Alertmanager's ``/api/v2/alerts`` (and a silence's comment) to say, in
words, why an alert that Prometheus fires has not reached a receiver: Alertmanager never got
it, a silence or an inhibition suppresses it, or its routes send it elsewhere.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlchaos.errors import RunError

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web

__all__ = ["AlertmanagerError", "Notification", "WebhookReceiver", "explain", "matches"]


class AlertmanagerError(RunError):
    """Alertmanager did not answer, or answered something that is not its API."""


@dataclass(frozen=True)
class Notification:
    """One alert of one webhook notification."""

    at: float  # the receiver's clock (monotonic) when it arrived
    receiver: str
    status: str  # firing | resolved
    labels: dict[str, str]


class WebhookReceiver:
    """Alertmanager's webhook target, on ``host:port`` while it runs."""

    def __init__(self, host: str, port: int, clock: Callable[[], float]) -> None:
        self.host, self.port = host, port
        self._clock = clock
        self.notifications: list[Notification] = []
        self.refused = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen; OSError (e.g. the port is in use) when it cannot."""
        from aiohttp import web  # noqa: PLC0415

        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", self._receive)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        from aiohttp import web  # noqa: PLC0415

        at = self._clock()
        try:
            payload = json.loads(await request.read())
            receiver = payload["receiver"]
            alerts = payload["alerts"]
            found = [
                Notification(at, str(receiver), str(a["status"]), _labels(a.get("labels")))
                for a in alerts
            ]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
            self.refused += 1
            return web.json_response(
                {"error": "expected an Alertmanager webhook notification (version 4)"}, status=400
            )
        self.notifications.extend(found)
        return web.json_response({"received": len(found)})


def _labels(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise TypeError("labels")
    return {str(k): str(v) for k, v in value.items()}


def matches(labels: dict[str, str], name: str, wanted: dict[str, str]) -> bool:
    """Whether an alert with ``labels`` is the alert ``name`` with the ``wanted`` labels."""
    return labels.get("alertname") == name and all(labels.get(k) == v for k, v in wanted.items())


async def explain(
    session: aiohttp.ClientSession,
    url: str,
    name: str,
    wanted: dict[str, str],
    receiver: str,
    limit_s: float,
) -> str:
    """Why the alert is not (yet) notified to ``receiver``, as Alertmanager sees it now."""
    alerts = await _get(session, url, "/api/v2/alerts", limit_s)
    if not isinstance(alerts, list):
        raise AlertmanagerError(f"{url}/api/v2/alerts: expected a list of alerts")
    mine = [
        a
        for a in alerts
        if isinstance(a, dict) and matches(_labels(a.get("labels", {})), name, wanted)
    ]
    if not mine:
        return (
            "Alertmanager has no such alert: Prometheus fired it but did not send it there "
            "(is Alertmanager in Prometheus' alerting configuration?)"
        )
    reasons = []
    for alert in mine:
        status = alert.get("status") or {}
        routed = [r.get("name") for r in alert.get("receivers") or [] if isinstance(r, dict)]
        silences = status.get("silencedBy") or []
        inhibitors = status.get("inhibitedBy") or []
        if silences:
            words = [await _silence(session, url, str(s), limit_s) for s in silences]
            reasons.append("silenced by " + "; ".join(words))
        elif inhibitors:
            reasons.append(f"inhibited by the alert(s) {', '.join(map(str, inhibitors))}")
        elif receiver not in routed:
            where = ", ".join(f"'{r}'" for r in routed) or "no receiver"
            reasons.append(f"Alertmanager routes it to {where}, not '{receiver}'")
        else:
            reasons.append(f"routed to '{receiver}' and active, but not yet notified (group_wait?)")
    return "; ".join(dict.fromkeys(reasons))


async def _silence(session: aiohttp.ClientSession, url: str, silence: str, limit_s: float) -> str:
    try:
        found = await _get(session, url, f"/api/v2/silence/{silence}", limit_s)
    except AlertmanagerError:
        return f"silence {silence}"
    if not isinstance(found, dict):
        return f"silence {silence}"
    comment, author = found.get("comment") or "", found.get("createdBy") or "?"
    return f"silence {silence} ('{comment}', by {author})"


async def _get(session: aiohttp.ClientSession, url: str, path: str, limit_s: float) -> Any:
    import aiohttp  # noqa: PLC0415

    where = url.rstrip("/") + path
    try:
        async with asyncio.timeout(limit_s), session.get(where) as resp:
            if resp.status != 200:
                raise AlertmanagerError(f"{where}: HTTP {resp.status}")
            return await resp.json(content_type=None)
    except TimeoutError:
        raise AlertmanagerError(f"{where}: no answer within {limit_s:g}s") from None
    except ValueError:
        raise AlertmanagerError(f"{where}: the answer is not JSON") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise AlertmanagerError(f"{where}: not reachable ({exc or type(exc).__name__})") from None
