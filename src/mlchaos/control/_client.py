"""The client side every mlchaos control API shares: bearer token, JSON calls, clear errors.

Every failure is a :class:`ControlAPIError` whose message names the URL and the likely fix. The
calls every control API answers — health, and renewing or removing a leased fault by id — are
here; :class:`mlchaos.proxy.ControlClient` and :class:`mlchaos.agent.AgentClient` add their own.
:func:`call_sync` makes one call the same way from code without an event loop (the pytest
plugin's proxy, the Chaos Toolkit extension).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from types import TracebackType
from typing import Any, Self

import aiohttp

from mlchaos.errors import ControlAPIError
from mlchaos.units import Duration

__all__ = ["ControlAPIClient", "StatusError", "call_sync"]


class ControlAPIClient:
    """Talks to one control API. Use as ``async with Client(url, token) as c``."""

    def __init__(self, url: str, token: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- what every control API answers ------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/health")

    async def renew(self, fault_id: str, lease: Duration | None = None) -> float:
        """Extend a fault's lease from now; returns the seconds until it expires."""
        payload = {} if lease is None else {"lease": str(lease)}
        body = await self._call("POST", f"/faults/{fault_id}/renew", payload)
        return float(body["expires_in"])

    async def remove(self, fault_id: str, *, missing_ok: bool = False) -> bool:
        """Remove a fault; True if it was active. An unknown id raises unless ``missing_ok``."""
        try:
            await self._call("DELETE", f"/faults/{fault_id}")
        except ControlAPIError as exc:
            if missing_ok and isinstance(exc, StatusError) and exc.status == 404:
                return False
            raise
        return True

    # -- plumbing ------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, payload: object = None) -> dict[str, Any]:
        url = self.url + path
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        try:
            async with self._session.request(method, url, json=payload) as resp:
                status = resp.status
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            detail = str(exc) or type(exc).__name__
            raise ControlAPIError(
                f"cannot reach the control API at {url} ({detail}): is it running?"
            ) from None
        return _answer(method, url, status, body)


def call_sync(
    url: str, token: str, method: str, path: str, payload: object = None, *, timeout: float = 10.0
) -> dict[str, Any]:
    """One call to the control API at ``url``, blocking; errors as :class:`ControlAPIClient`'s."""
    target = url.rstrip("/") + path
    request = urllib.request.Request(  # noqa: S310 - a control API's http:// URL
        target,
        data=None if payload is None else json.dumps(payload).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except OSError as exc:
        detail = str(exc) or type(exc).__name__
        raise ControlAPIError(
            f"cannot reach the control API at {target} ({detail}): is it running?"
        ) from None
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = None
    return _answer(method, target, status, body)


def _answer(method: str, url: str, status: int, body: Any) -> dict[str, Any]:
    """The answer's JSON object, or the :class:`StatusError` its status means."""
    if status < 300 and isinstance(body, dict):
        return body
    message = body.get("error") if isinstance(body, dict) else None
    if status == 401:
        raise StatusError(
            status, f"{method} {url}: wrong token (401): check the token file the server wrote"
        )
    raise StatusError(
        status, f"{method} {url} failed with status {status}: {message or 'no error message'}"
    )


class StatusError(ControlAPIError):
    """The control API answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
