"""Delayed labels: each answered request's label, fetched in batches from a label service.

In production the truth about a prediction arrives later (the user churned, the transaction was
fraud) and is joined to the request by its id. :class:`LabelJoin` does that join while the
traffic runs: a request waits for its label before it becomes an observation, and the waiting
requests are sent to the label service together, at most ``batch`` at a time and at least every
``_FLUSH_S``. A label service that fails or answers nonsense yields NaN labels (those requests
then count for nothing in accuracy) and a note, never an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp

    from mlchaos.spec._traffic import LabelSource

__all__ = ["LabelJoin"]

_FLUSH_S = 0.1


@dataclass(frozen=True, slots=True)
class _Pending:
    request: dict[str, Any]
    label: asyncio.Future[float]


class LabelJoin:
    """Batches label lookups; ``async with`` runs the sender, leaving it fails what is pending."""

    def __init__(self, source: LabelSource, session: aiohttp.ClientSession) -> None:
        self._source = source
        self._session = session
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self.failures: list[str] = []
        self.missing = 0  # requests the service had no label for

    async def __aenter__(self) -> LabelJoin:
        self._sender = asyncio.create_task(self._send_loop(), name="label join")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        for p in self._pending:
            if not p.label.done():
                p.label.set_result(math.nan)
        self._pending.clear()

    async def label(self, request_id: str, row: int, key: str | None, sent: float) -> float:
        """The label of one request; NaN when the service has none or cannot be asked."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pending.append(
            _Pending({"id": request_id, "row": row, "key": key, "time": sent}, future)
        )
        if len(self._pending) >= self._source.batch:
            self._wake.set()
        return await future

    def notes(self) -> list[str]:
        notes = []
        if self.failures:
            notes.append(
                f"{len(self.failures)} calls to the label service failed (first: "
                f"{self.failures[0]}); their requests have no label"
            )
        if self.missing:
            notes.append(f"the label service had no label for {self.missing} requests")
        return notes

    async def _send_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_FLUSH_S):
                    await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._source.batch]
                del self._pending[: self._source.batch]
                labels = await self._fetch([p.request for p in batch])
                for p, value in zip(batch, labels, strict=True):
                    if not p.label.done():
                        p.label.set_result(value)

    async def _fetch(self, requests: list[dict[str, Any]]) -> list[float]:
        """Labels for ``requests`` in order; all NaN (and one failure noted) when the call fails."""
        import aiohttp  # noqa: PLC0415

        nan = [math.nan] * len(requests)
        try:
            async with asyncio.timeout(self._source.timeout.seconds):
                async with self._session.post(
                    self._source.url, json={"requests": requests}
                ) as response:
                    if response.status != 200:
                        self.failures.append(f"HTTP {response.status}")
                        return nan
                    document = await response.json(content_type=None)
        except TimeoutError:
            self.failures.append(f"no answer within {self._source.timeout}")
            return nan
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            self.failures.append(str(exc) or type(exc).__name__)
            return nan
        labels = document.get("labels") if isinstance(document, dict) else None
        if not isinstance(labels, list) or len(labels) != len(requests):
            self.failures.append("the answer is not {'labels': [...]} with one label per request")
            return nan
        out = [_number(v) for v in labels]
        self.missing += sum(math.isnan(v) for v in out)
        return out


def _number(value: object) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return math.nan
