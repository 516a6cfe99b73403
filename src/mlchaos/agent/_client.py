"""A client of the agent's control API (the plumbing every control API client shares)."""

from __future__ import annotations

from typing import Any

from mlchaos.control import ControlAPIClient
from mlchaos.process import ProcessSelector
from mlchaos.units import Duration

__all__ = ["AgentClient"]


class AgentClient(ControlAPIClient):
    """``health``, ``renew`` and ``remove`` as for a proxy; plus check, pause, confine and
    the list of faults held (``paused``)."""

    async def check(
        self,
        selector: ProcessSelector,
        *,
        cpu: float | None = None,
        memory: int | None = None,
        peer: ProcessSelector | None = None,
        gpu: bool = False,
        device: int | None = None,
    ) -> dict[str, Any]:
        """Resolve the selector on the agent's host without acting: ``{"pid", "name"}``; with
        limits, also that the agent can make a cgroup with them; with a peer, that the two
        processes' network namespaces can be cut apart; with ``gpu``, that there is a GPU
        (``device``, or the process's) and a driver to take its memory."""
        body: dict[str, Any] = {"process": _dump(selector)}
        body |= {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
        if peer is not None:
            body["peer"] = _dump(peer)
        if gpu:
            body |= {"gpu": True} | ({} if device is None else {"device": device})
        return await self._call("POST", "/check", body)

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

    async def confine(
        self,
        fault_id: str,
        selector: ProcessSelector,
        lease: Duration,
        *,
        cpu: float | None = None,
        memory: int | None = None,
    ) -> dict[str, Any]:
        """Move the process into a cgroup with a CPU quota (cores) and/or a memory limit
        (bytes) for ``lease``: ``{"pid", "confirmed", "cgroup": {...}, ...}``."""
        body: dict[str, Any] = {
            "id": fault_id,
            "action": "confine",
            "process": _dump(selector),
            "lease": str(lease),
        }
        body |= {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
        return await self._call("POST", "/faults", body)

    async def partition(
        self,
        fault_id: str,
        selector: ProcessSelector,
        peer: ProcessSelector,
        lease: Duration,
        *,
        direction: str = "both",
        mode: str = "silent",
    ) -> dict[str, Any]:
        """Cut the network between the two processes' namespaces for ``lease`` (``direction``:
        both, outbound — the process's packets to the peer — or inbound; ``mode``: silent
        drops, loud refuses): ``{"pid", "confirmed", "rules": [...], ...}``."""
        body = {
            "id": fault_id,
            "action": "partition",
            "process": _dump(selector),
            "peer": _dump(peer),
            "lease": str(lease),
            "direction": direction,
            "mode": mode,
        }
        return await self._call("POST", "/faults", body)

    async def take_gpu_memory(
        self,
        fault_id: str,
        selector: ProcessSelector,
        lease: Duration,
        *,
        device: int | None = None,
        leave_free: int | None = None,
        leave_free_share: float | None = None,
    ) -> dict[str, Any]:
        """Take device memory on the process's GPU (or GPU ``device``) until only ``leave_free``
        bytes (or ``leave_free_share`` of it) stay free, for ``lease``: ``{"pid", "confirmed",
        "gpu": {"gpu", "uuid", "held", "free", "holder"}, ...}``."""
        body: dict[str, Any] = {
            "id": fault_id,
            "action": "gpu_memory",
            "process": _dump(selector),
            "lease": str(lease),
        }
        options = (("device", device), ("leave_free", leave_free))
        body |= {
            k: v for k, v in (*options, ("leave_free_share", leave_free_share)) if v is not None
        }
        return await self._call("POST", "/faults", body)

    async def paused(self) -> list[dict[str, Any]]:
        body = await self._call("GET", "/faults")
        return list(body["faults"])


def _dump(selector: ProcessSelector) -> dict[str, Any]:
    return selector.model_dump(mode="json", exclude_none=True)
