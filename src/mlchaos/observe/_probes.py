"""Probes of steady state and reachability: one HTTP request, one TCP connect or one PromQL
query each."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

    from mlchaos.spec import HttpProbe, Probe, PromqlProbe, Target

# The spec is imported inside the functions: the proxy imports the observation store from this
# package, and the spec imports the proxy's models, so an import here would be circular.

__all__ = ["ProbeResult", "probe", "probe_all", "promql", "reach_target"]


@dataclass(frozen=True)
class ProbeResult:
    """A probe's answer. ``no_data``: the probe could not tell (a PromQL query that returned no
    series, or a Prometheus that timed out or failed): not ``ok``, and no evidence either way."""

    name: str
    ok: bool
    detail: str
    latency: float
    no_data: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "latency": self.latency}


async def probe(p: Probe, session: aiohttp.ClientSession) -> ProbeResult:
    """Run one steady-state probe; never raises for a failing system, only reports."""
    from mlchaos.spec import PromqlProbe, TcpProbe  # noqa: PLC0415

    if isinstance(p, TcpProbe):
        return await _tcp(p.name, p.address, p.timeout.seconds)
    if isinstance(p, PromqlProbe):
        return await promql(p, session)
    return await _http(p, session)


async def promql(p: PromqlProbe, session: aiohttp.ClientSession) -> ProbeResult:
    """Holds when the query returns series and every one compares as the probe says."""
    from mlchaos.observe._prometheus import PrometheusError, instant_query  # noqa: PLC0415

    t0 = time.monotonic()
    try:
        series = await instant_query(session, p.url, p.query, p.timeout.seconds)
    except PrometheusError as exc:
        return ProbeResult(p.name, False, str(exc), time.monotonic() - t0, no_data=True)
    latency = time.monotonic() - t0
    if not series:
        detail = f"no data: {p.query} returned no series"
        return ProbeResult(p.name, False, detail, latency, no_data=True)
    failing = [(labels, v) for labels, v in series if not p.holds(v)]
    values = ", ".join(f"{v:g}" for _, v in series[:5])
    if failing:
        labels, v = failing[0]
        which = ",".join(f"{k}={val}" for k, val in sorted(labels.items())) or "the result"
        detail = f"{which} = {v:g}, not {p.op} {p.value:g} ({len(failing)} of {len(series)})"
        return ProbeResult(p.name, False, detail, latency)
    return ProbeResult(p.name, True, f"{p.describe()}: {values}", latency)


async def probe_all(probes: list[Probe], session: aiohttp.ClientSession) -> list[ProbeResult]:
    return list(await asyncio.gather(*(probe(p, session) for p in probes)))


async def reach_target(t: Target, session: aiohttp.ClientSession) -> ProbeResult:
    """Is the target reachable at all (any HTTP answer below 500, or a TCP accept)?"""
    from mlchaos.spec import HttpProbe  # noqa: PLC0415

    if t.address is not None:
        return await _tcp(t.name, t.address, 2.0)
    assert t.url is not None
    url = t.url.rstrip("/") + "/" + t.health.lstrip("/")
    p = HttpProbe(name=t.name, url=url, expect_status=list(range(200, 500)))
    return await _http(p, session)


async def _http(p: HttpProbe, session: aiohttp.ClientSession) -> ProbeResult:
    import aiohttp  # noqa: PLC0415

    t0 = time.monotonic()
    try:
        async with asyncio.timeout(p.timeout.seconds):
            async with session.request(p.method, p.url) as resp:
                await resp.read()
                status = resp.status
    except TimeoutError:
        return ProbeResult(
            p.name, False, f"{p.url}: no answer within {p.timeout}", p.timeout.seconds
        )
    except (aiohttp.ClientError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        return ProbeResult(p.name, False, f"{p.url}: {reason}", time.monotonic() - t0)
    latency = time.monotonic() - t0
    if status not in p.expect_status:
        return ProbeResult(p.name, False, f"{p.url}: status {status}", latency)
    if p.max_latency is not None and latency > p.max_latency.seconds:
        detail = f"{p.url}: {latency * 1000:.0f}ms > {p.max_latency}"
        return ProbeResult(p.name, False, detail, latency)
    return ProbeResult(p.name, True, f"{p.url}: status {status}", latency)


async def _tcp(name: str, address: str, limit_s: float) -> ProbeResult:
    from mlchaos.proxy._config import Address  # noqa: PLC0415

    t0 = time.monotonic()
    try:
        addr = Address.model_validate(address)
    except ValueError:
        return ProbeResult(name, False, f"not a host:port address: {address!r}", 0.0)
    try:
        async with asyncio.timeout(limit_s):
            _, writer = await asyncio.open_connection(addr.host, addr.port)
        writer.close()
        await writer.wait_closed()
    except TimeoutError:
        return ProbeResult(name, False, f"{address}: no answer within {limit_s:g}s", limit_s)
    except OSError as exc:
        return ProbeResult(name, False, f"{address}: {exc.strerror or exc}", time.monotonic() - t0)
    return ProbeResult(name, True, f"{address}: accepts connections", time.monotonic() - t0)
