"""An async client of a proxy's control API, for the runner and for scripts."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from mlchaos.control import ControlAPIClient, StatusError
from mlchaos.errors import ControlAPIError
from mlchaos.proxy._faults import ActiveFault
from mlchaos.proxy._live import Cohorts
from mlchaos.proxy._rules import Rule
from mlchaos.proxy._stats import ProxyStats
from mlchaos.units import Duration

__all__ = ["ControlClient"]

_RULE = TypeAdapter[Rule](Rule)


class ControlClient(ControlAPIClient):
    """Talks to one proxy's control API. Use as ``async with ControlClient(url, token) as c``."""

    async def list_faults(self) -> list[ActiveFault]:
        """Every active fault, as typed snapshots (ControlAPIError for one this client cannot
        read, e.g. set by another tool or a newer mlchaos: :meth:`fault_ids` reads any)."""
        faults = await self._faults()
        try:
            return [ActiveFault.model_validate(f) for f in faults]
        except ValidationError as exc:
            message = f"{self.url}: an active fault this client cannot read: {exc}"
            raise ControlAPIError(message) from None

    async def fault_ids(self) -> list[str]:
        """The ids of the active faults, whatever their rules and leases."""
        return [str(f["id"]) for f in await self._faults() if isinstance(f, dict) and "id" in f]

    async def _faults(self) -> list[Any]:
        faults = (await self._call("GET", "/faults")).get("faults")
        if not isinstance(faults, list):
            raise ControlAPIError(f"{self.url}/faults: the answer has no 'faults' list")
        return faults

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

    async def renew_fault(self, fault_id: str, lease: Duration | None = None) -> dict[str, int]:
        """Extend a fault's lease from now; what it has changed so far, per arm."""
        payload = {} if lease is None else {"lease": str(lease)}
        return _hits(await self._call("POST", f"/faults/{fault_id}/renew", payload))

    async def remove_fault(self, fault_id: str) -> dict[str, int] | None:
        """Remove a fault; what it changed in all, per arm (None: it was not active)."""
        try:
            return _hits(await self._call("DELETE", f"/faults/{fault_id}"))
        except StatusError as exc:
            if exc.status == 404:
                return None
            raise

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


def _hits(body: dict[str, Any]) -> dict[str, int]:
    hits = body.get("hits")
    if not isinstance(hits, dict) or not all(isinstance(v, int) for v in hits.values()):
        raise ControlAPIError("the proxy's answer has no per-arm 'hits' counts")
    return {str(k): v for k, v in hits.items()}
