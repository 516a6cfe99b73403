"""The proxy under attack, soaked: does it hold its memory and keep serving real traffic?

Run: ``.venv/bin/python benchmarks/proxy_soak.py [--seconds 60] [--slowloris 1500]``

Starts the toy model and an HTTP proxy in front of it (``mlchaos proxy serve``, defaults:
10 s header timeout, 60 s idle timeout), then for ``--seconds``:

* ``--slowloris`` connections each send a request head one header line at a time, a line
  every 5 s, never finishing it;
* 16 connections each try to send a 30 MiB request head that never ends;
* normal traffic: 50 OIP v2 inference requests a second through the proxy.

It prints the proxy's resident memory (RSS) before, during (peak) and 5 s after the attack,
the normal traffic's p50/p99 latency and errors, and how many attacking connections the proxy
closed (by the header timeout, or with 431 for the endless heads). The process file-descriptor
limit is raised to its hard limit first (each slowloris connection is two descriptors here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil

MLCHAOS = [sys.executable, "-m", "mlchaos"]
BODY = json.dumps(
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0.1, 0.2, 0.3, 0.4]}]}
).encode()


def start(args: list[str]) -> tuple[subprocess.Popen[str], dict[str, object] | str]:
    proc = subprocess.Popen([*MLCHAOS, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        return proc, json.loads(line)
    except ValueError:
        return proc, line


async def slowloris(port: int, stop: float, closed: list[int]) -> None:
    """A head sent one header line every 5 s, never finished; counts itself when the proxy
    closes it (closed[0]) or refuses it (closed[1])."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        closed[1] += 1
        return
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    i = 0
    try:
        while time.monotonic() < stop:
            try:
                if await asyncio.wait_for(reader.read(4096), 5.0) == b"":
                    closed[0] += 1
                    return
            except TimeoutError:
                writer.write(b"X-Slow-%d: 1\r\n" % i)
                i += 1
                await writer.drain()
    except OSError:
        closed[0] += 1
    finally:
        writer.close()


async def endless_head(port: int, stop: float, cut: list[int]) -> None:
    """A 30 MiB header that never ends; counts itself when the proxy cuts it short (cut[0]),
    and when it read the 431 answer before the cut (cut[1])."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Junk: ")
    chunk = b"a" * 65536
    sent = 0
    try:
        while sent < 30 * 2**20 and time.monotonic() < stop:
            writer.write(chunk)
            sent += len(chunk)
            await asyncio.wait_for(writer.drain(), 15.0)
    except (OSError, TimeoutError):
        cut[0] += 1
    try:
        if (await asyncio.wait_for(reader.read(64), 2.0)).startswith(b"HTTP/1.1 431"):
            cut[1] += 1
    except (OSError, TimeoutError):
        pass
    writer.close()


async def normal(port: int, stop: float, latencies: list[float], errors: list[int]) -> None:
    url = f"http://127.0.0.1:{port}/v2/models/toy/infer"
    async with aiohttp.ClientSession() as session:
        tasks = []

        async def one() -> None:
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=BODY, timeout=aiohttp.ClientTimeout(5)) as r:
                    await r.read()
                    if r.status != 200:
                        errors[0] += 1
            except (aiohttp.ClientError, TimeoutError):
                errors[0] += 1
            latencies.append(time.perf_counter() - t0)

        while time.monotonic() < stop:
            tasks.append(asyncio.create_task(one()))
            await asyncio.sleep(0.02)
        await asyncio.gather(*tasks)


async def attack(port: int, seconds: float, slow: int, rss: list[float], pid: int) -> None:
    stop = time.monotonic() + seconds
    closed = [0, 0]
    cut = [0, 0]
    latencies: list[float] = []
    errors = [0]
    proc = psutil.Process(pid)

    async def sample() -> None:
        while time.monotonic() < stop + 1:
            rss.append(proc.memory_info().rss / 2**20)
            await asyncio.sleep(0.5)

    jobs = [asyncio.create_task(slowloris(port, stop, closed)) for _ in range(slow)]
    jobs += [asyncio.create_task(endless_head(port, stop, cut)) for _ in range(16)]
    jobs.append(asyncio.create_task(normal(port, stop, latencies, errors)))
    jobs.append(asyncio.create_task(sample()))
    await asyncio.gather(*jobs)
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000
    print(
        f"normal traffic: {len(latencies)} requests, {errors[0]} errors, "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    print(
        f"slowloris: {closed[0]} of {slow} closed by the proxy's header timeout "
        f"({closed[1]} refused at connect)"
    )
    print(f"endless 30 MiB heads: {cut[0]} of 16 cut short by the proxy ({cut[1]} read its 431)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--slowloris", type=int, default=1500)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        upstream, ready = start(["upstream", "serve", "--port", "0"])
        found = re.search(r"http://127\.0\.0\.1:(\d+)", str(ready))
        assert found is not None, ready
        config = Path(tmp) / "proxy.json"
        address = {"listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{found[1]}"}
        config.write_text(json.dumps(address))
        proxy, info = start(["proxy", "serve", "--config", str(config), "--announce"])
        assert isinstance(info, dict)
        try:
            pid, port = proxy.pid, int(info["port"])  # type: ignore[arg-type]
            before = psutil.Process(pid).memory_info().rss / 2**20
            rss: list[float] = []
            asyncio.run(attack(port, args.seconds, args.slowloris, rss, pid))
            time.sleep(5.0)
            after = psutil.Process(pid).memory_info().rss / 2**20
            print(
                f"proxy RSS: {before:.1f} MiB before, {max(rss):.1f} MiB peak during, "
                f"{after:.1f} MiB 5 s after"
            )
        finally:
            for p in (proxy, upstream):
                p.terminate()
                p.wait(timeout=10)


if __name__ == "__main__":
    main()
