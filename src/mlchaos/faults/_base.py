"""The one small interface every injector offers the runner."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Injector"]


class Injector(Protocol):
    """A fault the runner can check, inject, keep alive, remove and verify removed.

    ``inject`` gives the fault a lease; unless ``renew`` is called within it, the fault removes
    itself, so a runner that dies leaves nothing behind for longer than one lease.

    ``hits`` is what a fault on traffic has changed so far, per arm (``none``, ``experiment``,
    ``control``), as of its last renewal or its removal, counted in ``unit`` (requests or
    connections); None for faults that do not act on traffic (a killed process).
    """

    @property
    def label(self) -> str: ...

    @property
    def hits(self) -> dict[str, int] | None: ...

    @property
    def unit(self) -> str: ...

    async def check(self) -> None:
        """Raise PreflightError unless the fault can be both injected and removed."""

    async def rehearse(self) -> str:
        """Inject with no traffic share where that is possible, verify active, remove, verify
        gone (else only :meth:`check`); what was done. PreflightError on failure."""

    async def inject(self) -> None: ...

    async def renew(self) -> None: ...

    async def remove(self) -> None: ...

    async def verify_removed(self) -> bool: ...
