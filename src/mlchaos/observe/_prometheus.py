"""Reading a Prometheus server's HTTP API: instant PromQL queries and the active alerts.

Both raise :class:`PrometheusError` with a message naming the URL and what went wrong (not
reachable, an error status with Prometheus' own ``error`` text, a body that is not its JSON).
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

from mlchaos.errors import RunError

if TYPE_CHECKING:
    import aiohttp

__all__ = ["PrometheusError", "alerts", "instant_query"]


class PrometheusError(RunError):
    """A Prometheus API call failed."""


async def instant_query(
    session: aiohttp.ClientSession, url: str, query: str, limit_s: float
) -> list[tuple[dict[str, str], float]]:
    """The series of an instant query as (labels, value); a scalar is one unlabelled series."""
    data = await _get(session, url, "/api/v1/query", {"query": query}, limit_s)
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector" and isinstance(result, list):
        return [(dict(r.get("metric", {})), _number(r.get("value"))) for r in result]
    if kind == "scalar":
        return [({}, _number(result))]
    raise PrometheusError(f"{url}: the query {query!r} gives a {kind}, not an instant vector")


async def alerts(session: aiohttp.ClientSession, url: str, limit_s: float) -> list[dict[str, Any]]:
    """The pending and firing alerts: ``[{"labels", "state", "activeAt", ...}]``."""
    data = await _get(session, url, "/api/v1/alerts", {}, limit_s)
    found = data.get("alerts")
    if not isinstance(found, list):
        raise PrometheusError(f"{url}/api/v1/alerts: the answer has no 'alerts' list")
    return [a for a in found if isinstance(a, dict)]


async def _get(
    session: aiohttp.ClientSession,
    url: str,
    path: str,
    params: dict[str, str],
    limit_s: float,
) -> dict[str, Any]:
    import aiohttp  # noqa: PLC0415

    where = url.rstrip("/") + path
    try:
        async with asyncio.timeout(limit_s):
            async with session.get(where, params=params) as resp:
                status = resp.status
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
    except TimeoutError:
        raise PrometheusError(f"{where}: no answer within {limit_s:g}s") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise PrometheusError(f"{where}: not reachable ({exc or type(exc).__name__})") from None
    if body is None:
        what = f"status {status}" if status >= 300 else "the answer is not JSON"
        raise PrometheusError(f"{where}: {what} (is this Prometheus?)")
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        raise PrometheusError(f"{where}: status {status}: {error or 'not a Prometheus answer'}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise PrometheusError(f"{where}: the answer has no data")
    return data


def _number(value: Any) -> float:
    """``[timestamp, "1.5"]`` → 1.5; anything else NaN."""
    try:
        return float(value[1])
    except (TypeError, ValueError, IndexError):
        return math.nan
