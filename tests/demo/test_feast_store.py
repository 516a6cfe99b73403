"""The demo on a real Feast feature server (``feast serve``, SQLite online store), both gateway
variants, on the experiments that exercise the store: its outage, a feature missing from its
real answers, and the pipeline delay (features going stale in Feast).

Feast runs from ``.venv-feast`` (``make test`` makes it); the test skips without it, naming why,
and fails instead when ``MLCHAOS_REQUIRE_FEAST=1`` (CI).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from mlchaos.demo._feast import find_feast
from tests.demo.test_demo import assert_all_gone, demo_pids, run_demo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="the demo supervisor targets Linux"),
]

EXPERIMENTS = ("feature-store-outage", "feature-missing", "pipeline-delay")
ONLY = ["--feature-store", "feast", *(x for name in EXPERIMENTS for x in ("--only", name))]


@pytest.fixture(autouse=True)
def needs_feast() -> None:
    if find_feast() is not None:
        return
    why = "Feast is not installed (make .venv-feast/.installed)"
    if os.environ.get("MLCHAOS_REQUIRE_FEAST") == "1":
        pytest.fail(f"MLCHAOS_REQUIRE_FEAST=1 but {why}")
    pytest.skip(why)


@pytest.mark.parametrize(("variant", "code"), [("resilient", 0), ("naive", 1)])
def test_the_store_experiments_on_feast_hold_on_the_resilient_gateway_and_fail_on_the_naive(
    tmp_path: Path, variant: str, code: int
) -> None:
    done = run_demo(tmp_path, "--variant", variant, *ONLY)
    assert done.returncode == code, done.stdout[-4000:] + done.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["feature_store"] == "feast"
    verdicts = {e["name"]: e["verdict"] for e in summary["experiments"]}
    assert set(verdicts) == set(EXPERIMENTS)
    if variant == "resilient":
        assert set(verdicts.values()) == {"held"}, verdicts
        missing = next(e for e in summary["experiments"] if e["name"] == "feature-missing")
        (reach,) = missing["summary"]["reach"]
        assert reach["hits"] > 0  # the fault really rewrote Feast's own answers
    else:
        assert set(verdicts.values()) <= {"failed", "aborted"}, verdicts  # a guardrail stops it
    assert_all_gone(demo_pids(tmp_path))
    leftovers = [p for p in Path("/proc").glob("[0-9]*") if _feast_serving(p, tmp_path)]
    assert not leftovers, "a feast serve outlived the demo"


def _feast_serving(proc: Path, out: Path) -> bool:
    try:
        command = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"feast" in command and str(out).encode() in command
