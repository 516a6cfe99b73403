"""Proxy faults, injected through a proxy's control API with a lease."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlchaos.errors import ControlAPIError, PreflightError
from mlchaos.proxy._rules import FaultArm
from mlchaos.units import Share

if TYPE_CHECKING:
    from mlchaos.proxy import ControlClient, Rule
    from mlchaos.units import Duration

__all__ = ["ProxyFaultInjector"]


class ProxyFaultInjector:
    """One rule on one proxy, under a fixed id so removal and renewal are idempotent."""

    def __init__(
        self, client: ControlClient, rule: Rule, *, lease: Duration, fault_id: str, proxy: str
    ) -> None:
        self._client = client
        self.rule = rule
        self._lease = lease
        self.fault_id = fault_id
        self.proxy = proxy
        self.hits: dict[str, int] | None = None
        self.unit = "requests"

    @property
    def label(self) -> str:
        return f"{self.rule.type} on {self.proxy} ({self.rule.arm.value}, {self.rule.probability})"

    async def check(self) -> None:
        """The rule can select its arm on this proxy; then add it at 0% probability under the
        same lease, verify, remove, verify."""
        try:
            info = await self._client.health()
        except ControlAPIError as exc:
            raise PreflightError(f"proxy '{self.proxy}': {exc}") from None
        if info.get("protocol") == "tcp":
            self.unit = "connections"
        shares = info.get("arms") or {}
        if (
            info.get("protocol") == "tcp"
            and self.rule.arm is not FaultArm.ALL
            and shares.get("experiment") in ("0%", None)
            and shares.get("control") in ("0%", None)
            and self.rule.arm.value not in (info.get("arm_listen") or {})
        ):
            raise PreflightError(
                f"{self.label} would never fire: tcp proxy '{self.proxy}' gives no connection "
                "an arm (no arm header on a connection, its arm shares are 0%, and the arm has "
                "no listener of its own); use 'arm: all', or start the proxy with arm shares or "
                "arm_listen"
            )
        await self.rehearse()

    async def rehearse(self) -> str:
        """The rule with no traffic share (probability 0%): injected, listed as active,
        removed, no longer listed. PreflightError naming the step that failed."""
        trial_id = f"{self.fault_id}-rehearsal"
        trial = self.rule.model_copy(update={"probability": Share(0.0)})
        try:
            await self._client.add_fault(trial, self._lease, fault_id=trial_id)
            if trial_id not in await self._client.fault_ids():
                raise PreflightError(f"proxy '{self.proxy}' does not list an injected fault")
            await self._client.remove(trial_id)
            if trial_id in await self._client.fault_ids():
                raise PreflightError(f"proxy '{self.proxy}' did not remove a rehearsal fault")
        except ControlAPIError as exc:
            raise PreflightError(f"proxy '{self.proxy}' cannot take {self.label}: {exc}") from None
        return "injected at 0%, listed as active, removed, gone"

    async def inject(self) -> None:
        self.hits = {}
        await self._client.add_fault(self.rule, self._lease, fault_id=self.fault_id)

    async def renew(self) -> None:
        self.hits = await self._client.renew_fault(self.fault_id, self._lease)

    async def remove(self) -> None:
        """Remove it; its final counts when the proxy still had it (else those of the last
        renewal stand: a fault whose lease lapsed took its last few counts with it)."""
        final = await self._client.remove_fault(self.fault_id)
        if final is not None:
            self.hits = final

    async def verify_removed(self) -> bool:
        return self.fault_id not in await self._client.fault_ids()
