"""The Chaos Toolkit extension under the real ``chaos run`` (chaostoolkit from PyPI in its own
``.venv-chaostoolkit``, mlchaos installed beside it, as a team would have it).

A hand-written experiment uses the extension's action, probe and tolerance against the toy model
behind a real proxy; the exported demo experiment (``mlchaos export --format chaostoolkit``)
runs against the real demo. Each run's journal is checked: the hypothesis probes before and
after, the fault, the rollback — and that the proxy holds no fault afterwards, also when the run
deviates, and when ``chaos run`` is killed (the lease). Skipped without the environment, naming
why; required in CI (``MLCHAOS_REQUIRE_CHAOSTOOLKIT=1``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from mlchaos.cli import main
from mlchaos.demo._stack import DemoStack
from tests.conftest import ROOT, ProxyProcess, Spawn, start_proxy

CHAOS = ROOT / ".venv-chaostoolkit" / "bin" / "chaos"
BODY = {
    "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0.1, 0.2, 0.3, 0.4]}]
}


@pytest.fixture
def chaos() -> Path:
    if CHAOS.exists():
        return CHAOS
    why = f"Chaos Toolkit is not installed in {CHAOS.parent.parent} (make test installs it)"
    if os.environ.get("MLCHAOS_REQUIRE_CHAOSTOOLKIT") == "1":
        pytest.fail(f"MLCHAOS_REQUIRE_CHAOSTOOLKIT=1 but {why}")
    pytest.skip(why)


def run_chaos(
    chaos: Path, experiment: dict[str, Any], tmp_path: Path, *args: str
) -> dict[str, Any]:
    """``chaos run`` on the experiment; its journal."""
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment))
    journal = tmp_path / "journal.json"
    done = subprocess.run(
        [str(chaos), "--no-version-check", "run", *args, "--journal-path", str(journal), str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert journal.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(journal.read_text())
    result["output"] = done.stdout + done.stderr
    return result


def control_get(control: str, path: str, token: str) -> dict[str, Any]:
    """GET on a proxy's control API."""
    request = urllib.request.Request(control + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as r:
        answer: dict[str, Any] = json.loads(r.read())
        return answer


def faults_on(proxy: ProxyProcess) -> list[dict[str, Any]]:
    faults: list[dict[str, Any]] = control_get(
        f"http://127.0.0.1:{proxy.control}", "/faults", proxy.token
    )["faults"]
    return faults


def experiment(proxy: ProxyProcess, *, bound: float, pause: float = 0.0) -> dict[str, Any]:
    """A fifth of the experiment arm's model calls aborted; the hypothesis: its error rate
    within ``bound`` of control's, judged on Newcombe's interval."""
    inject: dict[str, Any] = {
        "type": "action",
        "name": "abort a fifth of the experiment arm",
        "provider": {
            "type": "python",
            "module": "mlchaos.chaostoolkit.actions",
            "func": "inject_fault",
            "arguments": {
                "proxy_url": f"http://127.0.0.1:{proxy.control}",
                "token_file": str(proxy.token_file),
                "rule": {"type": "abort", "status": 503, "arm": "experiment", "probability": 0.2},
                "lease": "2s",
            },
        },
    }
    if pause:
        inject["pauses"] = {"after": pause}
    return {
        "version": "1.0.0",
        "title": "a fifth of the experiment arm's model calls aborted",
        "description": "hand-written: the extension's action, probe and tolerance",
        "steady-state-hypothesis": {
            "title": "experiment errors within bound of control",
            "probes": [
                {
                    "type": "probe",
                    "name": "errors judged on the interval",
                    "tolerance": {
                        "type": "probe",
                        "name": "within the bound",
                        "provider": {
                            "type": "python",
                            "module": "mlchaos.chaostoolkit.tolerances",
                            "func": "error_rate_within",
                            "arguments": {"max": bound, "relative_to": "control"},
                        },
                    },
                    "provider": {
                        "type": "python",
                        "module": "mlchaos.chaostoolkit.probes",
                        "func": "send_requests",
                        "arguments": {
                            "url": f"http://127.0.0.1:{proxy.listen}/v2/models/toy/infer",
                            "bodies": [BODY],
                            "requests": 400,
                        },
                    },
                }
            ],
        },
        "method": [inject],
        "rollbacks": [
            {
                "type": "action",
                "name": "remove this run's faults",
                "provider": {
                    "type": "python",
                    "module": "mlchaos.chaostoolkit.actions",
                    "func": "remove_fault",
                    "arguments": {
                        "proxy_url": f"http://127.0.0.1:{proxy.control}",
                        "token_file": str(proxy.token_file),
                    },
                },
            }
        ],
    }


def test_a_hypothesis_that_holds_under_the_fault(
    chaos: Path, tmp_path: Path, spawn: Spawn, upstream: int
) -> None:
    proxy = start_proxy(tmp_path, spawn, upstream)
    # 200 per arm at 20%: the difference's interval reaches about +26 points; 40 is safely above
    journal = run_chaos(chaos, experiment(proxy, bound=0.40), tmp_path)
    assert (journal["status"], journal["deviated"]) == ("completed", False)
    before, after = journal["steady_states"]["before"], journal["steady_states"]["after"]
    assert before["steady_state_met"] and after["steady_state_met"]
    # before: no fault, each arm ~0 errors; after: the experiment arm's fifth aborted
    assert before["probes"][0]["output"]["experiment"] == {"requests": 200, "errors": 0}
    assert 10 <= after["probes"][0]["output"]["experiment"]["errors"] <= 80
    assert after["probes"][0]["output"]["control"]["errors"] == 0
    (injected,) = journal["run"]
    assert injected["status"] == "succeeded" and injected["output"]["id"]
    (removed,) = journal["rollbacks"]
    assert removed["output"] == {"removed": [injected["output"]["id"]]}
    assert "minus control's" in journal["output"] and "holds" in journal["output"]
    assert faults_on(proxy) == []


def test_a_deviating_run_still_rolls_back_with_the_rollback_strategy_always(
    chaos: Path, tmp_path: Path, spawn: Spawn, upstream: int
) -> None:
    proxy = start_proxy(tmp_path, spawn, upstream)
    journal = run_chaos(
        chaos, experiment(proxy, bound=0.05), tmp_path, "--rollback-strategy=always"
    )
    assert (journal["status"], journal["deviated"]) == ("completed", True)
    assert not journal["steady_states"]["after"]["steady_state_met"]
    assert "does not hold" in journal["output"]
    (removed,) = journal["rollbacks"]
    assert removed["status"] == "succeeded" and len(removed["output"]["removed"]) == 1
    assert faults_on(proxy) == []


def test_a_killed_chaos_run_leaves_no_fault_past_its_lease(
    chaos: Path, tmp_path: Path, spawn: Spawn, upstream: int
) -> None:
    proxy = start_proxy(tmp_path, spawn, upstream)
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment(proxy, bound=0.40, pause=60)))
    run = subprocess.Popen(
        [str(chaos), "--no-version-check", "run", str(path)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not faults_on(proxy):
            assert run.poll() is None and time.monotonic() < deadline, "no fault injected"
            time.sleep(0.1)
        time.sleep(3)  # renewed past its 2 s lease while chaos runs
        assert len(faults_on(proxy)) == 1
        run.send_signal(signal.SIGKILL)
        run.wait()
        killed = time.monotonic()
        while faults_on(proxy):
            assert time.monotonic() - killed < 2 + 1.5, "the fault outlived its lease"
            time.sleep(0.1)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def test_discover_lists_the_extensions_activities(chaos: Path, tmp_path: Path) -> None:
    subprocess.run(
        [
            str(chaos),
            "--no-version-check",
            "discover",
            "--no-system-info",
            "--no-install",
            "mlchaos",
        ],
        cwd=tmp_path,
        capture_output=True,
        check=True,
        timeout=60,
    )
    found = json.loads((tmp_path / "discovery.json").read_text())
    assert {a["name"] for a in found["activities"]} == {
        "inject_fault",
        "remove_fault",
        "send_requests",
        "proxy_stats",
        "error_rate_within",
    }


@pytest_asyncio.fixture
async def demo(tmp_path: Path) -> AsyncIterator[DemoStack]:
    async with DemoStack(tmp_path / "demo") as stack:
        yield stack


@pytest.mark.slow
@pytest.mark.asyncio
async def test_the_exported_demo_experiment_holds_under_chaos_run(
    chaos: Path,
    tmp_path: Path,
    demo: DemoStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in demo.variables.items():
        monkeypatch.setenv(key, value)
    exported = tmp_path / "endpoint-failover.json"
    source = ROOT / "examples" / "demo" / "endpoint-failover.yaml"
    assert main(["export", "--format", "chaostoolkit", str(source), "--out", str(exported)]) == 0
    left = capsys.readouterr().err
    assert "not carried over: the fault schedule" in left
    document = json.loads(exported.read_text())
    assert "Not carried over from the mlchaos experiment" in document["description"]

    journal = await asyncio.to_thread(
        run_chaos, chaos, document, tmp_path, "--rollback-strategy=always"
    )
    assert (journal["status"], journal["deviated"]) == ("completed", False), journal["output"][
        -3000:
    ]
    after = journal["steady_states"]["after"]["probes"]
    assert after and all(p["tolerance_met"] for p in after)
    (injected,) = journal["run"]
    assert injected["status"] == "succeeded"
    assert [r["status"] for r in journal["rollbacks"]] == ["succeeded"]
    link = demo.links["replica-a"]
    token = link.token_file.read_text().strip()
    faults = await asyncio.to_thread(control_get, link.control, "/faults", token)
    assert faults["faults"] == []  # rolled back
    stats = await asyncio.to_thread(control_get, link.control, "/stats", token)
    assert stats["arms"]["experiment"]["faults"] > 0  # the fault reached the experiment arm
    assert stats["arms"]["control"]["faults"] == 0
