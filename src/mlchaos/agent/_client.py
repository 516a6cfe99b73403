"""A client of the agent's control API (the plumbing every control API client shares)."""

from __future__ import annotations

from typing import Any

from mlchaos.control import ControlAPIClient
from mlchaos.process import ProcessSelector
from mlchaos.units import Duration

__all__ = ["AgentClient"]


class AgentClient(ControlAPIClient):
    """``health``, ``renew`` and ``remove`` as for a proxy; plus check, pause and paused."""

    async def check(self, selector: ProcessSelector) -> dict[str, Any]:
        """Resolve the selector on the agent's host without acting: ``{"pid", "name"}``."""
        return await self._call("POST", "/check", {"process": _dump(selector)})

    async def pause(
        self, fault_id: str, selector: ProcessSelector, lease: Duration
    ) -> dict[str, Any]:
        """Stop the process for ``lease`` (renewed by :meth:`renew`): ``{"pid", "name",
        "confirmed", ...}``, ``confirmed`` when the agent saw the kernel show it stopped."""
        return await self._call(
            "POST",
            "/faults",
            {"id": fault_id, "action": "pause", "process": _dump(selector), "lease": str(lease)},
        )

    async def paused(self) -> list[dict[str, Any]]:
        body = await self._call("GET", "/faults")
        return list(body["faults"])


def _dump(selector: ProcessSelector) -> dict[str, Any]:
    return selector.model_dump(mode="json", exclude_none=True)
