"""An async client of a proxy's control API, for the runner and for scripts.

Every failure is a :class:`ControlAPIError` whose message names the URL and the likely fix.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import aiohttp
from pydantic import TypeAdapter

from mlchaos.errors import ControlAPIError
from mlchaos.proxy._faults import ActiveFault
from mlchaos.proxy._live import Cohorts
from mlchaos.proxy._rules import Rule
from mlchaos.proxy._stats import ProxyStats
from mlchaos.units import Duration

__all__ = ["ControlClient"]

_RULE = TypeAdapter[Rule](Rule)


class ControlClient:
    """Talks to one proxy's control API. Use as ``async with ControlClient(url, token) as c``."""

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

    # -- the API -------------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/health")

    async def list_faults(self) -> list[ActiveFault]:
        body = await self._call("GET", "/faults")
        return [ActiveFault.model_validate(f) for f in body["faults"]]

    async def add_fault(
        self, rule: Rule, lease: Duration | None = None, *, fault_id: str | None = None
    ) -> str:
        """Activate ``rule`` for ``lease`` (the proxy's default when None); returns its id."""
        payload: dict[str, Any] = {"rule": _RULE.dump_python(rule, mode="json")}
        if lease is not None:
            payload["lease"] = str(lease)
        if fault_id is not None:
            payload["id"] = fault_id
        body = await self._call("POST", "/faults", payload)
        return str(body["id"])

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
            if missing_ok and isinstance(exc, _StatusError) and exc.status == 404:
                return False
            raise
        return True

    async def clear(self) -> int:
        """Remove every fault; returns how many there were."""
        body = await self._call("DELETE", "/faults")
        return int(body["removed"])

    async def stats(self) -> ProxyStats:
        return ProxyStats.model_validate(await self._call("GET", "/stats"))

    async def set_cohorts(self, cohorts: Cohorts) -> float:
        """Split live traffic into ``cohorts`` for their lease; seconds until it lapses."""
        body = await self._call("PUT", "/cohorts", cohorts.model_dump(mode="json"))
        return float(body["expires_in"])

    async def renew_cohorts(self, lease: Duration | None = None) -> float:
        payload = {} if lease is None else {"lease": str(lease)}
        body = await self._call("POST", "/cohorts/renew", payload)
        return float(body["expires_in"])

    async def clear_cohorts(self) -> bool:
        """Back to the proxy's configured split; True if cohorts were set."""
        body = await self._call("DELETE", "/cohorts")
        return bool(body["removed"])

    async def cohorts(self) -> dict[str, Any]:
        return await self._call("GET", "/cohorts")

    async def observations(self, after: int, limit: int = 10_000) -> dict[str, Any]:
        """The edge's logged observations from sequence number ``after`` (see the control API)."""
        return await self._call("GET", f"/observations?after={after}&limit={limit}")

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
        if status < 300 and isinstance(body, dict):
            return body
        message = body.get("error") if isinstance(body, dict) else None
        if status == 401:
            raise _StatusError(
                status, f"{method} {url}: wrong token (401): check the token file the proxy wrote"
            )
        raise _StatusError(
            status, f"{method} {url} failed with status {status}: {message or 'no error message'}"
        )


class _StatusError(ControlAPIError):
    """The control API answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
