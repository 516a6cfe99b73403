"""The runner's phase machine against a real toy model behind a real proxy it starts itself."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from mlchaos.errors import EXIT_CANNOT_RUN, EXIT_FAILED, EXIT_OK
from mlchaos.journal import FaultRecord, Journal, read_journal
from mlchaos.runner import Runner
from mlchaos.spec import Experiment, validate_data
from mlchaos.testing import Upstream, start_upstream
from tests.conftest import ROOT, free_port

DATASET = str(ROOT / "examples" / "data" / "toy.csv")


@pytest_asyncio.fixture
async def toy() -> AsyncIterator[Upstream]:
    async with await start_upstream() as up:
        yield up


def experiment(
    upstream_port: int, listen: int, traffic: dict[str, Any] | None = None, **overrides: Any
) -> Experiment:
    data: dict[str, Any] = {
        "title": "runner test",
        "proxies": [
            {
                "name": "p",
                "serve": {
                    "listen": f"127.0.0.1:{listen}",
                    "upstream": f"127.0.0.1:{upstream_port}",
                },
            }
        ],
        "traffic": {
            "target": f"http://127.0.0.1:{listen}",
            "dataset": DATASET,
            "rate": "100/s",
            "duration": "3s",
            "request": {"protocol": "v2", "model": "toy"},
            "label": "label",
            "key": "entity_id",
            **(traffic or {}),
        },
        "steady_state": [
            {"name": "ready", "url": f"http://127.0.0.1:{upstream_port}/v2/health/ready"}
        ],
        "faults": [{"type": "abort", "target": "p", "status": 503, "start": "0s"}],
        "hypothesis": [{"metric": "error_rate", "arm": "control", "max": "5%"}],
        "lease": "1s",
        "recovery": {"deadline": "3s"},
    }
    data.update(overrides)
    return validate_data(data, Experiment, source="test")


async def run(exp: Experiment, tmp_path: Path) -> tuple[Any, list[dict[str, Any]]]:
    journal = Journal(tmp_path / "journal.jsonl")
    outcome = await Runner(exp, base_dir=tmp_path, journal=journal).run()
    return outcome, read_journal(tmp_path / "journal.jsonl")


def kinds(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == kind]


@pytest.mark.asyncio
async def test_hypothesis_holds_and_every_phase_is_journaled(toy: Upstream, tmp_path: Path) -> None:
    outcome, records = await run(experiment(toy.port, free_port()), tmp_path)
    assert outcome.exit_code == EXIT_OK, outcome
    phases = [r["phase"] for r in kinds(records, "phase") if r["event"] == "end"]
    assert phases == ["preflight", "steady_state", "inject", "rollback", "recovery"]
    events = [r["event"] for r in kinds(records, "fault")]
    assert events[:2] == ["injected", "removed"]
    assert kinds(records, "fault")[-1] == {**kinds(records, "fault")[-1], "ok": True}
    assert outcome.recovered is True
    assert sum(len(r["columns"]["arm"]) for r in kinds(records, "observations")) > 200


@pytest.mark.asyncio
async def test_guardrail_trip_aborts_removes_faults_and_exits_1(
    toy: Upstream, tmp_path: Path
) -> None:
    exp = experiment(
        toy.port,
        free_port(),
        traffic={"duration": "20s"},
        guardrails=[{"name": "errors", "metric": "error_rate", "max": "50%", "min_samples": 20}],
    )
    t0 = asyncio.get_running_loop().time()
    outcome, records = await run(exp, tmp_path)
    assert outcome.verdict == "aborted"
    assert outcome.exit_code == EXIT_FAILED
    assert "guardrail 'errors' tripped" in (outcome.abort_reason or "")
    assert asyncio.get_running_loop().time() - t0 < 15  # stopped long before the 20 s of traffic
    (switch,) = kinds(records, "kill_switch")
    # Measured and journaled here; that nothing waits between the trip and the removal is
    # proven exactly on virtual time (test_phases: 0 ms), and timed in benchmarks/kill_switch.py.
    assert switch["trip_to_removed_ms"] >= 0
    assert [r["ok"] for r in kinds(records, "fault") if r["event"] == "verified_removed"] == [True]


@pytest.mark.asyncio
async def test_cancelling_mid_injection_rolls_back_then_propagates(
    toy: Upstream, tmp_path: Path
) -> None:
    exp = experiment(toy.port, free_port(), traffic={"duration": "30s"})
    injected = asyncio.Event()

    def watch(event: object) -> None:
        if isinstance(event, FaultRecord) and event.event == "injected":
            injected.set()

    journal = Journal(tmp_path / "journal.jsonl")
    runner = Runner(exp, base_dir=tmp_path, journal=journal, listeners=[watch])
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(injected.wait(), 10)
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    outcome = runner.outcome
    assert outcome.verdict == "aborted"
    assert "interrupted" in (outcome.abort_reason or "")
    records = read_journal(tmp_path / "journal.jsonl")
    assert [r["event"] for r in kinds(records, "fault")][-2:] == ["removed", "verified_removed"]


@pytest.mark.asyncio
async def test_upstream_down_at_start_exits_3_and_injects_nothing(tmp_path: Path) -> None:
    outcome, records = await run(experiment(free_port(), free_port()), tmp_path)
    assert outcome.exit_code == EXIT_CANNOT_RUN
    assert outcome.error
    assert not kinds(records, "fault")


@pytest.mark.asyncio
async def test_listen_port_in_use_exits_3_naming_the_address(toy: Upstream, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        outcome, records = await run(experiment(toy.port, port), tmp_path)
    assert outcome.exit_code == EXIT_CANNOT_RUN
    assert f"127.0.0.1:{port}" in (outcome.error or "")
    assert not kinds(records, "fault")


@pytest.mark.asyncio
async def test_steady_state_failing_before_injection_exits_3(toy: Upstream, tmp_path: Path) -> None:
    exp = experiment(
        toy.port,
        free_port(),
        steady_state=[{"name": "absent", "url": f"http://127.0.0.1:{toy.port}/nope"}],
    )
    outcome, records = await run(exp, tmp_path)
    assert outcome.exit_code == EXIT_CANNOT_RUN
    assert "steady state does not hold" in (outcome.error or "")
    assert not kinds(records, "fault")


@pytest.mark.asyncio
async def test_rollback_actions_run_and_failures_are_recorded(
    toy: Upstream, tmp_path: Path
) -> None:
    marker = tmp_path / "rolled-back"
    exp = experiment(
        toy.port,
        free_port(),
        rollback=[
            {
                "type": "command",
                "name": "touch",
                "argv": [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"],
            },
            {
                "type": "command",
                "name": "fails",
                "argv": [sys.executable, "-c", "raise SystemExit(3)"],
            },
            {
                "name": "http",
                "url": f"http://127.0.0.1:{toy.port}/v2/health/ready",
                "method": "GET",
            },
        ],
    )
    _, records = await run(exp, tmp_path)
    assert marker.exists()
    assert {r["name"]: r["ok"] for r in kinds(records, "rollback_action")} == {
        "touch": True,
        "fails": False,
        "http": True,
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("problem", ["wrong token", "unreachable"])
async def test_connect_proxy_with_wrong_token_or_no_api_exits_3(
    toy: Upstream, tmp_path: Path, problem: str
) -> None:
    from mlchaos.proxy import ProxyConfig, ProxyServer

    config = ProxyConfig.model_validate(
        {"listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{toy.port}"}
    )
    async with ProxyServer(config, token="right-token") as proxy:
        token_file = tmp_path / "token"
        token_file.write_text("wrong-token" if problem == "wrong token" else "right-token")
        url = proxy.control_url if problem == "wrong token" else f"http://127.0.0.1:{free_port()}"
        exp = experiment(
            toy.port,
            proxy.listen_address.port,
            proxies=[{"name": "p", "connect": {"url": url, "token_file": str(token_file)}}],
        )
        outcome, records = await run(exp, tmp_path)
        assert not proxy.faults.list()
    assert outcome.exit_code == EXIT_CANNOT_RUN
    assert "proxy 'p'" in (outcome.error or "")
    assert ("token" if problem == "wrong token" else "running") in (outcome.error or "")
    assert not kinds(records, "fault")


@pytest.mark.asyncio
async def test_the_runner_serves_its_prometheus_metrics_while_it_runs(
    toy: Upstream, tmp_path: Path
) -> None:
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    from mlchaos.proxy import Address

    exp = experiment(toy.port, free_port())
    journal = Journal(tmp_path / "journal.jsonl")
    runner = Runner(
        exp, base_dir=tmp_path, journal=journal, metrics=Address(host="127.0.0.1", port=0)
    )
    task = asyncio.create_task(runner.run())
    while runner.state.phase != "inject" or len(runner.store) < 50:
        assert not task.done(), task
        await asyncio.sleep(0.05)
    url = f"http://127.0.0.1:{runner.metrics_port}/metrics"
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        text = await r.text()
    outcome = await task
    assert outcome.exit_code == EXIT_OK
    samples = {
        (x.name, x.labels.get("arm"), x.labels.get("outcome"), x.labels.get("phase")): x.value
        for f in text_string_to_metric_families(text)
        for x in f.samples
    }
    assert samples[("mlchaos_runner_requests_total", "experiment", "error", None)] > 0
    assert samples[("mlchaos_runner_requests_total", "control", "error", None)] == 0
    assert samples[("mlchaos_runner_faults_active", None, None, None)] == 1
    assert samples[("mlchaos_runner_faults_injected_total", None, None, None)] == 1
    assert samples[("mlchaos_runner_phase", None, None, "inject")] == 1
    with pytest.raises(aiohttp.ClientConnectionError):  # served only while it runs
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            await r.read()


@pytest.mark.asyncio
async def test_a_fault_this_run_did_not_create_never_crashes_it(
    toy: Upstream, tmp_path: Path
) -> None:
    """Another tool's fault on the same proxy, with a lease and a shape this runner would not
    choose, is left alone: preflight, rollback and verification go by fault id."""
    from mlchaos.proxy import ControlClient, ProxyConfig, ProxyServer

    config = ProxyConfig.model_validate(
        {"listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{toy.port}"}
    )
    async with ProxyServer(config) as server:
        token_file = tmp_path / "proxy.token"
        token_file.write_text(server.token)
        async with ControlClient(server.control_url, server.token) as other:
            from pydantic import TypeAdapter

            from mlchaos.proxy import Rule

            foreign = {"type": "latency", "delay": "1ms", "arm": "control", "probability": "0%"}
            rule = TypeAdapter[Rule](Rule).validate_python(foreign)
            await other.add_fault(rule, fault_id="someone-else", lease=_huge_lease())
            exp = experiment(
                toy.port,
                server.listen_address.port,
                proxies=[
                    {
                        "name": "p",
                        "connect": {"url": server.control_url, "token_file": str(token_file)},
                    }
                ],
                traffic={"target": f"http://{server.listen_address}", "duration": "2s"},
            )
            outcome, records = await run(exp, tmp_path)
            assert outcome.exit_code == EXIT_OK, outcome
            verified = [r for r in kinds(records, "fault") if r["event"] == "verified_removed"]
            assert [r["ok"] for r in verified] == [True]
            assert "someone-else" in await other.fault_ids()  # not ours: left in place


def _huge_lease() -> Any:
    from mlchaos.units import Duration

    return Duration(300.0)  # the longest a proxy grants (control.max_lease)


@pytest.mark.asyncio
async def test_a_model_that_answers_400_shows_its_errors_by_cause_with_the_sample_body(
    tmp_path: Path,
) -> None:
    """A model server that refuses every third request with 400 (the preflight's request
    passes): the summary breaks the failures down by cause per arm, with the body."""
    from aiohttp import web

    from mlchaos.report import RunJournal, render_markdown, summarize

    async def infer(request: web.Request) -> web.Response:
        seq = (await request.json()).get("id", "")
        if seq.isdigit() and int(seq) % 3 == 0:
            return web.json_response(
                {"error": "input 'x' has shape [1, 3], expected [1, 4]"}, status=400
            )
        return web.json_response({"model_name": "toy", "outputs": [{"data": [1.0]}]})

    app = web.Application()
    app.router.add_post("/v2/models/toy/infer", infer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        exp = experiment(
            port,
            free_port(),
            traffic={"duration": "2s", "timeout": "1s"},
            steady_state=[],
            faults=[],
        )
        outcome, records = await run(exp, tmp_path)
    finally:
        await runner.cleanup()
    (first,) = [r for r in kinds(records, "probe") if r["name"] == "test request"]
    assert first["ok"] is True and "every extract path present" in first["detail"]
    summary = summarize(records)
    for arm in ("experiment", "control"):
        (cause,) = summary.errors[arm]
        assert cause["cause"] == "HTTP 400"
        assert cause["count"] > 10
        assert cause["samples"][0] == '{"error": "input \'x\' has shape [1, 3], expected [1, 4]"}'
        assert len(cause["samples"]) == 3
    markdown = render_markdown([RunJournal.from_records(records)])
    assert "| experiment | HTTP 400 |" in markdown and "expected [1, 4]" in markdown
    assert outcome.verdict == "failed", outcome.error


@pytest.mark.asyncio
async def test_a_run_whose_first_request_fails_is_refused_at_preflight_naming_the_status(
    toy: Upstream, tmp_path: Path
) -> None:
    exp = experiment(
        toy.port, free_port(), traffic={"request": {"protocol": "v2", "model": "no-such-model"}}
    )
    outcome, records = await run(exp, tmp_path)
    assert outcome.exit_code == EXIT_CANNOT_RUN
    assert "answered HTTP 404" in (outcome.error or ""), outcome.error
    assert "no-such-model" in (outcome.error or "")
    assert kinds(records, "fault") == [], "nothing was injected"
    # And an extract path the answer lacks is named at preflight too.
    exp = experiment(
        toy.port, free_port(), traffic={"extract": {"prediction": "outputs[0].nothing"}}
    )
    outcome, _ = await run(exp, tmp_path / "again")
    assert outcome.exit_code == EXIT_CANNOT_RUN
    assert "traffic.extract.prediction: the path 'outputs[0].nothing'" in (outcome.error or "")
