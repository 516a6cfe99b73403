"""The phase machine's rules, on fakes (mlchaos.testing): no sockets, virtual time.

Rollback cannot skip a fault, a failing step of rollback never skips the next, the verdict is
always written, a bug is an error with its traceback, and cancellation goes on after rollback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlchaos.errors import EXIT_CANNOT_RUN, EXIT_FAILED, EXIT_OK, ControlAPIError
from mlchaos.journal import FaultRecord, Journal, read_journal
from mlchaos.report import summarize
from mlchaos.runner import FaultSilent, Runner, SplitMismatch
from mlchaos.spec import Experiment, PromqlProbe, validate_data
from mlchaos.testing import (
    FakeInjector,
    FakeTraffic,
    ManualClock,
    fake_injectors,
    make_dataset,
    no_endpoints,
)


def experiment(
    tmp_path: Path, *, faults: int = 1, duration: str = "10s", **extra: Any
) -> Experiment:
    make_dataset(tmp_path / "data.csv", rows=50)
    token = tmp_path / "token"
    token.write_text("never-read")
    spec: dict[str, Any] = {
        "title": "fakes",
        "proxies": [
            {"name": "p", "connect": {"url": "http://127.0.0.1:9", "token_file": str(token)}}
        ],
        "traffic": {
            "target": "http://127.0.0.1:9",
            "dataset": str(tmp_path / "data.csv"),
            "rate": "100/s",
            "duration": duration,
            "timeout": "1s",
            "request": {"protocol": "v2", "model": "toy"},
            "arms": {"experiment": "50%", "control": "50%"},
        },
        "faults": [{"type": "abort", "target": "p", "status": 503, "start": "2s", "duration": "6s"}]
        * faults,
        "hypothesis": [{"metric": "error_rate", "arm": "control", "max": "5%"}],
        **extra,
    }
    return validate_data(spec, Experiment, source="test")


def fake_runner(
    exp: Experiment,
    tmp_path: Path,
    fakes: list[FakeInjector],
    *,
    listeners: tuple[Callable[[object], None], ...] = (),
    rate: float = 100.0,
    traffic_error: BaseException | None = None,
    control_lost: int = 0,
) -> Runner:
    """A runner of ``exp`` on fakes: virtual time, no endpoints, fake traffic and injectors."""
    clock = ManualClock()
    traffic = FakeTraffic(
        clock,
        fakes,
        duration=exp.traffic.duration.seconds,
        rate=rate,
        error=traffic_error,
        control_lost=control_lost,
    )
    return Runner(
        exp,
        base_dir=tmp_path,
        journal=Journal(tmp_path / "journal.jsonl"),
        listeners=listeners,
        clock=clock,
        endpoints=no_endpoints,
        injector=fake_injectors(*fakes),
        traffic=traffic,
    )


async def run(
    exp: Experiment,
    tmp_path: Path,
    fakes: list[FakeInjector],
    *,
    traffic_error: BaseException | None = None,
) -> tuple[Runner, list[dict[str, Any]]]:
    runner = fake_runner(exp, tmp_path, fakes, traffic_error=traffic_error)
    try:
        await runner.run()
    finally:
        records = read_journal(tmp_path / "journal.jsonl")
    return runner, records


def events(records: list[dict[str, Any]], kind: str = "fault") -> list[str]:
    return [r["event"] for r in records if r["kind"] == kind]


@pytest.mark.asyncio
async def test_a_clean_run_injects_removes_verifies_and_holds(tmp_path: Path) -> None:
    fake = FakeInjector()
    runner, records = await run(experiment(tmp_path), tmp_path, [fake])
    assert runner.outcome.verdict == "held", runner.outcome
    assert runner.outcome.exit_code == EXIT_OK
    assert fake.calls[:2] == ["check", "inject"]
    assert fake.calls[-2:] == ["remove", "verify_removed"]
    assert events(records) == ["injected", "removed", "verified_removed"]
    (traffic,) = [r for r in records if r["kind"] == "traffic"]
    assert traffic["sent"] == 1000  # 100/s for 10 virtual seconds
    assert records[-1]["kind"] == "verdict"


@pytest.mark.asyncio
async def test_a_fault_whose_inject_raised_after_applying_is_still_removed(tmp_path: Path) -> None:
    fake = FakeInjector(inject_error=ControlAPIError("the answer was lost"))
    runner, records = await run(experiment(tmp_path), tmp_path, [fake])
    assert fake.active is False, "rollback removed the fault the proxy had applied"
    assert "remove" in fake.calls
    assert events(records) == ["inject_failed", "removed", "verified_removed"]
    assert runner.outcome.verdict == "aborted"
    assert "the answer was lost" in (runner.outcome.abort_reason or "")


@pytest.mark.asyncio
async def test_a_failing_verification_is_journaled_and_rollback_actions_still_run(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "action-ran"
    action = {
        "name": "touch",
        "type": "command",
        "argv": [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"],
    }
    fake = FakeInjector(verify_error=RuntimeError("listing failed"))
    exp = experiment(tmp_path, rollback=[action])
    _, records = await run(exp, tmp_path, [fake])
    (verified,) = [r for r in records if r.get("event") == "verified_removed"]
    assert verified["ok"] is False
    assert "listing failed" in verified["error"]
    assert marker.exists(), "the rollback action ran after the failed verification"
    assert [r["ok"] for r in records if r["kind"] == "rollback_action"] == [True]
    assert records[-1]["kind"] == "verdict"


@pytest.mark.asyncio
async def test_an_unexpected_error_removing_one_fault_does_not_skip_the_next(
    tmp_path: Path,
) -> None:
    first = FakeInjector(label="first", remove_error=RuntimeError("boom"))
    second = FakeInjector(label="second")
    exp = experiment(tmp_path, faults=2)
    # The scheduled removal of the first fault raises (a bug): rollback tries again, fails
    # again, and still removes the second; the run ends in error, its verdict written.
    runner, records = await run(exp, tmp_path, [first, second])
    assert second.active is False
    assert [r["event"] for r in records if r["kind"] == "fault" and r["index"] == 1][-2:] == [
        "removed",
        "verified_removed",
    ]
    failed = [r for r in records if r.get("event") == "remove_failed"]
    assert failed and failed[0]["index"] == 0 and "boom" in failed[0]["error"]
    assert runner.outcome.verdict == "error"
    assert "boom" in (runner.outcome.error or "")
    assert records[-1]["kind"] == "verdict"


@pytest.mark.asyncio
async def test_a_bug_in_traffic_is_an_error_with_its_traceback_after_rollback(
    tmp_path: Path,
) -> None:
    fake = FakeInjector()
    exp = experiment(tmp_path)
    runner, records = await run(exp, tmp_path, [fake], traffic_error=KeyError("oops"))
    assert runner.outcome.verdict == "error"
    assert runner.outcome.exit_code == EXIT_CANNOT_RUN
    assert "KeyError" in (runner.outcome.error or "")
    assert "Traceback" in (runner.outcome.error or "")
    assert "remove" in fake.calls and fake.active is False  # in from 2s, the bug came at 5s
    assert (records[-1]["kind"], records[-1]["verdict"]) == ("verdict", "error")


@pytest.mark.asyncio
async def test_cancellation_rolls_back_then_propagates(tmp_path: Path) -> None:
    """A Runner under asyncio.timeout() (or in a TaskGroup) does not swallow cancellation."""
    fake = FakeInjector()
    task: asyncio.Task[Any] | None = None

    def cancel_once_injected(event: object) -> None:
        if isinstance(event, FaultRecord) and event.event == "injected" and task is not None:
            task.cancel()

    runner = fake_runner(
        experiment(tmp_path), tmp_path, [fake], listeners=(cancel_once_injected,), rate=1.0
    )
    task = asyncio.create_task(runner.run())
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fake.active is False
    assert runner.outcome.verdict == "aborted"
    assert runner.outcome.exit_code == EXIT_FAILED
    records = read_journal(tmp_path / "journal.jsonl")
    assert events(records)[-2:] == ["removed", "verified_removed"]
    assert records[-1]["kind"] == "verdict"


@pytest.mark.asyncio
async def test_a_timeout_around_a_run_surfaces_as_timeout_after_rollback(tmp_path: Path) -> None:
    fake = FakeInjector()
    timeout = asyncio.timeout(None)

    def expire_once_injected(event: object) -> None:
        if isinstance(event, FaultRecord) and event.event == "injected":
            timeout.reschedule(asyncio.get_running_loop().time())

    exp = experiment(tmp_path, duration="1h")
    runner = fake_runner(exp, tmp_path, [fake], listeners=(expire_once_injected,), rate=1.0)
    with pytest.raises(TimeoutError):
        async with timeout:
            await runner.run()
    assert fake.active is False
    assert runner.outcome.verdict == "aborted"


@pytest.mark.asyncio
async def test_a_guardrail_trip_removes_the_fault_at_once(tmp_path: Path) -> None:
    fake = FakeInjector()
    guard = {"name": "errors", "metric": "error_rate", "arm": "experiment", "max": "20%"}
    exp = experiment(tmp_path, guardrails=[guard | {"min_samples": 20}])
    runner, records = await run(exp, tmp_path, [fake])
    assert runner.outcome.verdict == "aborted"
    assert "guardrail 'errors' tripped" in (runner.outcome.abort_reason or "")
    (switch,) = [r for r in records if r["kind"] == "kill_switch"]
    assert switch["trip_to_removed_ms"] == 0.0  # virtual time: nothing waits in between
    assert fake.active is False


@pytest.mark.asyncio
async def test_a_promql_check_against_a_failing_prometheus_is_no_data_not_violated(
    tmp_path: Path,
) -> None:
    """A stand-in answers 503 where Prometheus would be (a real one cannot be made to)."""
    from aiohttp import web

    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=503, text="busy")

    app = web.Application()
    app.router.add_get("/api/v1/query", busy)
    server = web.AppRunner(app)
    await server.setup()
    await web.TCPSite(server, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{server.addresses[0][1]}"
    check = {"type": "promql", "name": "replicas up", "url": url, "query": "up", "value": 2}
    exp = experiment(tmp_path)
    exp = exp.model_copy(
        update={"hypothesis": [*exp.hypothesis, validate_data(check, PromqlProbe, source="t")]}
    )
    try:
        runner, records = await run(exp, tmp_path, [FakeInjector()])
    finally:
        await server.cleanup()
    (check_record,) = [r for r in records if r["kind"] == "check" and r["name"] == "replicas up"]
    assert check_record["status"] == "no_data"
    assert "status 503" in check_record["detail"]
    assert runner.outcome.verdict == "failed"  # no data is not evidence that it held


@pytest.mark.asyncio
async def test_a_failed_recovery_names_each_probe_and_its_last_answer_everywhere(
    tmp_path: Path,
) -> None:
    """The steady-state probe answers 503 from the injection on: recovery fails, and the
    terminal, Markdown and JUnit reports say which probe and what it last answered."""
    import io

    from aiohttp import web
    from rich.console import Console

    from mlchaos.report import RunJournal, render_junit, render_markdown, render_terminal

    healthy = True

    async def health(request: web.Request) -> web.Response:
        return web.Response(status=200 if healthy else 503, text="ok" if healthy else "down")

    app = web.Application()
    app.router.add_get("/health", health)
    server = web.AppRunner(app)
    await server.setup()
    await web.TCPSite(server, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{server.addresses[0][1]}/health"

    def break_it(event: object) -> None:
        nonlocal healthy
        if isinstance(event, FaultRecord) and event.event == "injected":
            healthy = False

    exp = experiment(
        tmp_path,
        steady_state=[{"name": "service health", "url": url}],
        recovery={"deadline": "1s", "interval": "100ms"},
    )
    runner = fake_runner(exp, tmp_path, [FakeInjector()], listeners=(break_it,))
    try:
        outcome = await runner.run()
    finally:
        await server.cleanup()
    assert (outcome.recovered, outcome.verdict) == (False, "failed")
    records = read_journal(tmp_path / "journal.jsonl")
    (recovery,) = [r for r in records if r["kind"] == "recovery"]
    assert recovery["failing"] == [f"service health: {url}: status 503"]
    run = RunJournal.from_records(records)
    out = io.StringIO()
    render_terminal(run.summary, Console(file=out, width=200))
    assert f"did not hold: service health: {url}: status 503" in out.getvalue()
    assert "**Did not hold:** service health:" in render_markdown([run])
    assert f"service health: {url}: status 503" in render_junit([run])


@pytest.mark.asyncio
async def test_a_fault_that_never_fired_makes_the_hypothesis_unsure_and_is_told_at_once(
    tmp_path: Path,
) -> None:
    silent = FakeInjector(label="abort on p", hits={"none": 0, "experiment": 0, "control": 0})
    seen: list[object] = []
    runner = fake_runner(experiment(tmp_path), tmp_path, [silent], listeners=(seen.append,))
    await runner.run()
    records = read_journal(tmp_path / "journal.jsonl")
    (warning,) = [e for e in seen if isinstance(e, FaultSilent)]
    assert warning.label == "abort on p" and warning.requests >= 20
    (removed,) = [r for r in records if r.get("event") == "removed"]
    assert removed["hits"] == {"none": 0, "experiment": 0, "control": 0}
    assert removed["unit"] == "requests"
    check, split = runner.outcome.checks
    assert check.status.value == "unsure"
    assert "fault never fired (abort on p: hit 0 requests" in check.detail
    assert split.name == "arms got their configured split" and split.status.value == "held"
    assert runner.outcome.verdict == "failed"
    summary = summarize(records)
    assert [r["never_fired"] for r in summary.reach] == [True]
    assert summary.mismatches == [], "the report recomputes the same unsure verdict"


@pytest.mark.asyncio
async def test_a_fault_that_fired_reports_its_hits_and_the_verdict_stands(tmp_path: Path) -> None:
    fired = FakeInjector(label="abort on p", hits={"none": 0, "experiment": 290, "control": 0})
    runner, records = await run(experiment(tmp_path), tmp_path, [fired])
    assert runner.outcome.verdict == "held"
    (reach,) = summarize(records).reach
    assert reach["hits"] == 290 and not reach["never_fired"]
    assert reach["text"].startswith("abort on p: hit 290 requests (")
    assert "of the experiment arm's" in reach["text"]


@pytest.mark.asyncio
async def test_a_sample_ratio_mismatch_is_told_live_and_makes_the_hypothesis_unsure(
    tmp_path: Path,
) -> None:
    """A third of the control arm's requests never arrive (60:40 instead of 50:50): the live
    display is told while it runs, the split check fails and the other checks are unsure."""
    seen: list[object] = []
    fired = FakeInjector(hits={"none": 0, "experiment": 300, "control": 0})
    runner = fake_runner(
        experiment(tmp_path), tmp_path, [fired], listeners=(seen.append,), control_lost=3
    )
    await runner.run()
    (told,) = [e for e in seen if isinstance(e, SplitMismatch)]
    assert told.unit == "requests" and told.expected == 0.5
    assert told.experiment > told.control
    check, split = runner.outcome.checks
    assert split.status.value == "violated"
    assert "experiment 500 and control 333 requests: 60.0% against 50.0%" in split.detail
    assert check.status.value == "unsure" and "sample-ratio mismatch" in check.detail
    assert runner.outcome.verdict == "failed"
    summary = summarize(read_journal(tmp_path / "journal.jsonl"))
    assert summary.mismatches == []


@pytest.mark.asyncio
async def test_a_trip_after_the_faults_ended_does_not_claim_to_have_removed_them(
    tmp_path: Path,
) -> None:
    """The fault is in place for the first 2 s; the guardrail (no verdict before 300 requests
    of its arm) trips later on what it did: rollback removes nothing, so no 'faults removed
    N ms after the trip' is recorded."""
    spec = experiment(
        tmp_path, guardrails=[{"metric": "error_rate", "max": "20%", "min_samples": 300}]
    ).model_dump(mode="json")
    spec["faults"] = [
        {"type": "abort", "target": "p", "status": 503, "start": "0s", "duration": "2s"}
    ]
    exp = Experiment.model_validate(spec)
    runner, records = await run(exp, tmp_path, [FakeInjector()])
    assert runner.outcome.verdict == "aborted", runner.outcome
    assert [r for r in records if r["kind"] == "kill_switch"] == []
