"""Fault fidelity: a latency fault never delivers less than it asks (on either data plane), and
a bandwidth fault delivers its rate within 5%.

The bounds do not depend on the machine being idle: a busy machine can only make a delayed
answer later (the lower bound is the fault's own promise), and the bandwidth test takes off the
time the same transfer needs without the fault, measured in the same test.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.proxy.conftest import Echo, MakeProxy, Upstream
from tests.proxy.test_tcp import ALL_EXPERIMENT, connect, rule


@pytest.mark.asyncio
@pytest.mark.parametrize("delay_ms", [10, 50])
async def test_an_http_latency_fault_never_delivers_less_than_asked(
    http_upstream: Upstream, make_proxy: MakeProxy, delay_ms: int
) -> None:
    proxy = await make_proxy(http_upstream.address, arms=ALL_EXPERIMENT)
    proxy.faults.add(rule(type="latency", delay=f"{delay_ms}ms"))
    url = f"http://{proxy.listen_address}/"
    took: list[float] = []

    async def client(session: aiohttp.ClientSession) -> None:
        for _ in range(25):
            t0 = time.perf_counter()
            async with session.get(url) as resp:
                await resp.read()
            took.append(time.perf_counter() - t0)

    # Many clients at once keep the proxy's loop busy: its millisecond clock is then read
    # late, which is when an uncorrected timer fires early.
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(24)))
    assert min(took) >= delay_ms / 1000, f"shortest {min(took) * 1000:.3f} ms of {len(took)}"


@pytest.mark.asyncio
async def test_a_tcp_latency_fault_never_delivers_less_than_asked(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(tcp_echo.address, protocol="tcp", arms=ALL_EXPERIMENT)
    proxy.faults.add(rule(type="latency", delay="10ms", stream="downstream"))
    took: list[float] = []

    async def client() -> None:
        reader, writer = await connect(proxy)
        try:
            for _ in range(25):
                t0 = time.perf_counter()
                writer.write(b"x")
                await reader.readexactly(1)
                took.append(time.perf_counter() - t0)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(24)))  # a busy loop, as above
    assert min(took) >= 0.010, f"shortest {min(took) * 1000:.3f} ms of {len(took)}"


async def _transfer(make_proxy: MakeProxy, upstream: str, size: int, rate: int | None) -> float:
    proxy = await make_proxy(upstream, protocol="tcp", arms=ALL_EXPERIMENT)
    if rate is not None:
        proxy.faults.add(rule(type="bandwidth", bytes_per_second=rate, stream="upstream"))
    reader, writer = await connect(proxy)
    try:
        payload = bytes(size)
        t0 = time.perf_counter()
        writer.write(payload)
        await reader.readexactly(size)  # the echo: the shaped way up, then straight back
        return time.perf_counter() - t0
    finally:
        writer.close()


@pytest.mark.asyncio
async def test_a_bandwidth_fault_delivers_its_rate_within_5_percent(
    tcp_echo: Echo, make_proxy: MakeProxy
) -> None:
    rate, size = 1_000_000, 1_500_000  # 1.5 s at the rate
    free = await _transfer(make_proxy, tcp_echo.address, size, None)
    shaped = await _transfer(make_proxy, tcp_echo.address, size, rate)
    burst = rate / 20  # the bucket starts full: that much goes at once
    delivered = (size - burst) / max(shaped - free, 1e-9)
    assert 0.95 * rate <= delivered <= 1.05 * rate, (
        f"{delivered / 1e6:.3f} MB/s (shaped {shaped:.3f} s, free {free:.3f} s)"
    )
