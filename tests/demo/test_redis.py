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
