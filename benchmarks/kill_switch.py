"""The kill switch's statistics, simulated: why guardrails use a sequential test.

A guardrail "experiment error rate at most `bound` above control" is checked every tick. This
prints, for many simulated runs:

1. A/A (both arms fail 2% of requests; the true increase is 0, the bound 0): how often each rule
   aborts a harmless run — the mixture SPRT (what mlchaos uses) against a naive rule that checks
   a fixed-sample 95% interval every tick and aborts the first time it lies above the bound.
2. A/B (the experiment arm fails 2% + δ): the median number of experiment-arm requests each rule
   needs to trip, at a 5% split of 2000 requests/s (100 requests per arm per second).
3. The time from a trip to the fault removed, against a proxy running as its own process
   (``mlchaos proxy serve``), the way the runner removes it: one control-API call, timed over
   many trips (target: at most 100 ms at p99).

Usage: .venv/bin/python benchmarks/kill_switch.py [--runs 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pydantic import TypeAdapter

from mlchaos.proxy import ControlClient, Rule
from mlchaos.stats import msprt_difference, proportion_difference

PER_TICK = 10  # requests per arm per 100 ms tick: 5% of 2000 requests/s
TICKS = 600  # one minute of monitoring
ALPHA = 0.05
BASE = 0.02


def simulate(rng: np.random.Generator, p_exp: float, runs: int) -> tuple[np.ndarray, np.ndarray]:
    """Requests per arm at which each rule first trips (inf: never), for ``runs`` runs."""
    exp = rng.binomial(PER_TICK, p_exp, (runs, TICKS)).cumsum(axis=1)
    ctl = rng.binomial(PER_TICK, BASE, (runs, TICKS)).cumsum(axis=1)
    seq = np.full(runs, np.inf)
    naive = np.full(runs, np.inf)
    for r in range(runs):
        for t in range(TICKS):
            n = (t + 1) * PER_TICK
            k1, k2 = int(exp[r, t]), int(ctl[r, t])
            if (
                seq[r] == np.inf
                and msprt_difference(k1, n, k2, n, bound=0.0, side="max", alpha=ALPHA).crossed
            ):
                seq[r] = n
            if naive[r] == np.inf and proportion_difference(k1, n, k2, n, 1 - ALPHA).low > 0:
                naive[r] = n
            if seq[r] != np.inf and naive[r] != np.inf:
                break
    return seq, naive


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _trips(control: str, token: str, trips: int) -> list[float]:
    """Seconds from each trip (fault active, the runner decides to stop) to the fault gone."""
    rule = TypeAdapter[Rule](Rule).validate_python({"type": "abort", "status": 503})
    times = []
    async with ControlClient(control, token) as client:
        for i in range(trips):
            await client.add_fault(rule, fault_id=f"trip-{i}")
            tripped = time.monotonic()
            await client.remove(f"trip-{i}")
            times.append(time.monotonic() - tripped)
        assert not await client.list_faults()
    return times


def trip_to_removal(trips: int) -> list[float]:
    """Start a toy model and a proxy as their own processes; time ``trips`` removals."""
    mlchaos = [sys.executable, "-m", "mlchaos"]
    upstream_port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "proxy.json"
        token_file = Path(tmp) / "token"
        config.write_text(
            json.dumps(
                {
                    "listen": "127.0.0.1:0",
                    "upstream": f"127.0.0.1:{upstream_port}",
                    "control": {"token_file": str(token_file)},
                }
            )
        )
        upstream = subprocess.Popen(
            [*mlchaos, "upstream", "serve", "--port", str(upstream_port)],
            stdout=subprocess.DEVNULL,
        )
        proxy = None
        try:
            deadline = time.monotonic() + 15
            while socket.socket().connect_ex(("127.0.0.1", upstream_port)) != 0:
                assert time.monotonic() < deadline, "the toy model did not start"
                time.sleep(0.05)
            proxy = subprocess.Popen(
                [*mlchaos, "proxy", "serve", "--config", str(config), "--announce"],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proxy.stdout is not None
            ready = json.loads(proxy.stdout.readline())
            return asyncio.run(_trips(ready["control"], token_file.read_text().strip(), trips))
        finally:
            for p in (proxy, upstream):
                if p is not None:
                    p.terminate()
                    p.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    runs = parser.parse_args().runs
    rng = np.random.default_rng(2026)
    print(
        f"{runs} simulated runs per row; {PER_TICK} requests per arm per 100 ms tick, "
        f"{TICKS} ticks; control fails {BASE:.0%}; guardrail: increase > 0, alpha = {ALPHA}"
    )
    seq, naive = simulate(rng, BASE, runs)
    se = math.sqrt(ALPHA * (1 - ALPHA) / runs)
    print(
        f"A/A false-abort rate: mSPRT {np.isfinite(seq).mean():.2%}, "
        f"naive repeated 95% interval {np.isfinite(naive).mean():.2%} "
        f"(alpha {ALPHA:.0%} ± {2 * se:.2%} sampling error)"
    )
    for delta in (0.01, 0.02, 0.05):
        seq, naive = simulate(rng, BASE + delta, max(200, runs // 5))
        print(
            f"A/B +{delta:.0%}: detected in {np.isfinite(seq).mean():.0%} of runs within "
            f"{TICKS * PER_TICK} requests, median {np.median(seq):.0f} experiment-arm requests "
            f"(naive: {np.median(naive):.0f}, but it also aborts harmless runs)"
        )
    ms = np.array(trip_to_removal(500)) * 1000
    print(
        f"trip to fault removed, against a proxy in its own process (500 trips): "
        f"p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, "
        f"max {ms.max():.2f} ms (target p99 <= 100 ms)"
    )


if __name__ == "__main__":
    main()
