"""The demo on a real Redis feature store behind a TCP fault proxy, both gateway variants.

The feature-store outage resets the gateway's Redis connections (real redis-py client code);
the pipeline delay makes the features in Redis go stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psutil
import pytest

from tests.demo.test_demo import assert_all_gone, demo_pids, run_demo

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="the demo supervisor targets Linux"),
    pytest.mark.usefixtures("needs_redis"),
]

ONLY = ["--feature-store", "redis", "--only", "feature-store-outage", "--only", "pipeline-delay"]


def redis_servers() -> set[int]:
    return {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "redis-server"}


@pytest.mark.parametrize(("variant", "code"), [("resilient", 0), ("naive", 1)])
def test_both_experiments_on_redis_hold_on_the_resilient_gateway_and_fail_on_the_naive(
    tmp_path: Path, variant: str, code: int
) -> None:
    before = redis_servers()
    done = run_demo(tmp_path, "--variant", variant, *ONLY)
    assert done.returncode == code, done.stdout[-4000:] + done.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["feature_store"] == "redis"
    verdicts = {e["name"]: e["verdict"] for e in summary["experiments"]}
    if variant == "resilient":
        assert verdicts == {"feature-store-outage": "held", "pipeline-delay": "held"}
        outage = summary["experiments"][0]["summary"]["arms"]["experiment"]
        assert outage["silent"]["value"] > 0.9  # cached or default features, never errors
    else:
        assert set(verdicts.values()) <= {"failed", "aborted"}, verdicts
        assert "experiment errors under 1%" in done.stdout
    assert_all_gone(demo_pids(tmp_path))
    assert redis_servers() <= before, "a redis-server outlived the demo"


@pytest.mark.asyncio
async def test_redis_outages_of_every_kind_hit_the_real_client_and_the_gateway_degrades(
    tmp_path: Path,
) -> None:
    """Reset, blackhole, refused connections and latency past the client's 100 ms timeout on
    the TCP proxy in front of Redis: the resilient gateway answers every request from cached
    or default features within its time budget, then returns to fresh features."""
    import time

    import aiohttp
    from pydantic import TypeAdapter

    from mlchaos.demo import DemoStack
    from mlchaos.proxy import ControlClient, Rule

    rules = TypeAdapter[Rule](Rule)
    body = {
        "inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32", "data": [3, 0.1, -0.2]}]
    }
    async with DemoStack(tmp_path, feature_store="redis") as stack:
        link = stack.links["store"]
        token = link.token_file.read_text().strip()
        url = f"{stack.url('gateway')}/v2/models/churn/infer"
        async with ControlClient(link.control, token) as proxy, aiohttp.ClientSession() as http:

            async def degradations(n: int) -> list[str]:
                out = []
                for _ in range(n):
                    t0 = time.monotonic()
                    async with http.post(url, json=body) as r:
                        assert r.status == 200
                        out.append((await r.json())["parameters"]["degradation"])
                    assert time.monotonic() - t0 < 1.0  # never blocked on Redis
                return out

            assert set(await degradations(5)) == {"none"}
            # A refusal only meets new connections: the pooled one is reset with it.
            for faults in (
                [{"type": "reset", "arm": "all"}],
                [{"type": "blackhole", "arm": "all"}],
                [{"type": "refuse", "arm": "all"}, {"type": "reset", "arm": "all"}],
                [{"type": "latency", "delay": "500ms", "arm": "all"}],
            ):
                ids = [await proxy.add_fault(rules.validate_python(f)) for f in faults]
                seen = await degradations(10)
                assert all(d in ("cached_features", "default_features") for d in seen[1:]), (
                    faults,
                    seen,
                )
                for fault_id in ids:
                    await proxy.remove(fault_id)
                t0 = time.monotonic()
                while "none" not in await degradations(1):  # the pool reconnects
                    assert time.monotonic() - t0 < 10, f"no fresh features after {faults}"
