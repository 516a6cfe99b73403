"""Admission, end to end through the CLI with a real proxy: caps refuse before anything is
contacted; production needs --confirm-production and a passed rehearsal of the same spec; a
run outside its schedule is refused; one experiment at a time per target."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlchaos.errors import RunError
from mlchaos.safety import Registry, wait_for_window
from mlchaos.spec._schedule import Schedule
from tests.conftest import MLCHAOS, ROOT, ProxyProcess, Spawn, free_port, start_proxy

Proxy = ProxyProcess


@pytest.fixture
def proxy(tmp_path: Path, spawn: Spawn, upstream: int) -> Proxy:
    return start_proxy(tmp_path, spawn, upstream)


def write_spec(tmp_path: Path, proxy: Proxy, extra: str = "", share: str = "5%") -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(f"""\
title: admission
proxies:
  - name: p
    connect: {{url: "http://127.0.0.1:{proxy.control}", token_file: "{proxy.token_file}"}}
traffic:
  target: http://127.0.0.1:{proxy.listen}
  dataset: {ROOT / "examples" / "data" / "toy.csv"}
  rate: 50/s
  duration: 2s
  request: {{protocol: v2, model: toy}}
  label: label
  key: entity_id
  arms: {{experiment: {share}, control: {share}}}
faults:
  - {{type: latency, target: p, delay: 1ms}}
hypothesis:
  - {{metric: error_rate, max: 50%}}
rollback:
  - {{type: command, name: check, argv: ["true"]}}
{extra}""")
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*MLCHAOS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert "Traceback" not in done.stdout + done.stderr
    return done


def journal_kinds(out: Path, name: str = "journal.jsonl") -> list[str]:
    return [json.loads(line)["kind"] for line in (out / name).read_text().splitlines()]


def test_a_spec_over_its_caps_is_refused_before_any_proxy_is_contacted(tmp_path: Path) -> None:
    nobody = Proxy(free_port(), free_port(), tmp_path / "no.token")  # nothing listens there
    spec = write_spec(tmp_path, nobody, "environment: staging\n", share="50%")
    out = tmp_path / "out"
    done = cli("run", str(spec), "--out", str(out), "--quiet")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "blast-radius caps of 'staging'" in done.stdout
    assert "max_experiment_share: the experiment arm is 50% of traffic" in done.stdout
    assert journal_kinds(out) == ["run", "verdict"]  # refused before preflight


def test_an_unknown_environment_names_the_profiles(tmp_path: Path) -> None:
    nobody = Proxy(free_port(), free_port(), tmp_path / "no.token")
    spec = write_spec(tmp_path, nobody, "environment: prod\n")
    done = cli("run", str(spec), "--out", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 2
    assert "environment 'prod' has no profile" in done.stdout
    assert "production, sandbox, staging" in done.stdout


def test_production_needs_confirmation_and_a_passed_rehearsal_of_the_same_spec(
    tmp_path: Path, proxy: Proxy
) -> None:
    spec = write_spec(tmp_path, proxy, "environment: production\n")
    run = ("run", str(spec), "--quiet")

    unconfirmed = cli(*run, "--out", str(tmp_path / "r1"))
    assert unconfirmed.returncode == 2
    assert "run again with --confirm-production" in unconfirmed.stdout

    unrehearsed = cli(*run, "--confirm-production", "--out", str(tmp_path / "r2"))
    assert unrehearsed.returncode == 3
    assert "needs a passed rehearsal of this spec: run 'mlchaos rehearse'" in unrehearsed.stdout

    rehearsed = cli("rehearse", str(spec), "--out", str(tmp_path / "h1"))
    assert rehearsed.returncode == 0, rehearsed.stdout
    assert "injected at 0%, listed as active, removed, gone" in rehearsed.stdout
    assert "rollback check: 'true' found" in rehearsed.stdout
    assert "rehearsal passed (3 steps)" in rehearsed.stdout
    kinds = journal_kinds(tmp_path / "h1", "rehearsal.jsonl")
    assert kinds[0] == "rehearsal" and kinds[-1] == "rehearsal_result"

    allowed = cli(*run, "--confirm-production", "--out", str(tmp_path / "r3"))
    assert allowed.returncode == 0, allowed.stdout
    assert "admission" in journal_kinds(tmp_path / "r3")

    # A changed spec is a different spec: its rehearsal does not carry over.
    changed = write_spec(tmp_path, proxy, "environment: production\ntick: 200ms\n")
    done = cli(
        "run", str(changed), "--confirm-production", "--quiet", "--out", str(tmp_path / "r4")
    )
    assert done.returncode == 3
    assert "needs a passed rehearsal" in done.stdout


def test_a_failed_rehearsal_is_recorded_and_blocks_the_production_run(
    tmp_path: Path, proxy: Proxy
) -> None:
    spec = write_spec(
        tmp_path,
        proxy,
        "environment: production\n",
    ).read_text()
    broken = tmp_path / "broken.yaml"
    broken.write_text(spec.replace('argv: ["true"]', "argv: [/no/such/program]"))
    rehearsed = cli("rehearse", str(broken), "--out", str(tmp_path / "h"))
    assert rehearsed.returncode == 1
    assert "FAILED  rollback check: '/no/such/program' is not an executable file" in (
        rehearsed.stdout
    )
    assert "rehearsal failed (1 of 3 steps)" in rehearsed.stdout
    done = cli("run", str(broken), "--confirm-production", "--quiet", "--out", str(tmp_path / "r"))
    assert done.returncode == 3
    assert "the last rehearsal of this spec failed (failed: rollback check)" in done.stdout


def test_a_rehearsal_against_a_proxy_that_is_down_fails_at_preflight(tmp_path: Path) -> None:
    nobody = Proxy(free_port(), free_port(), tmp_path / "no.token")
    nobody.token_file.write_text("t\n")
    spec = write_spec(tmp_path, nobody)
    done = cli("rehearse", str(spec), "--out", str(tmp_path / "h"))
    assert done.returncode == 1
    assert "FAILED  preflight: proxy 'p'" in done.stdout


def test_a_run_outside_its_window_is_refused_naming_the_next_opening(
    tmp_path: Path, proxy: Proxy
) -> None:
    now = datetime.now(UTC)
    start, end = (now + timedelta(hours=2)).strftime("%H:%M"), (now + timedelta(hours=3))
    schedule = f'schedule: {{windows: ["{start}-{end:%H:%M}"], timezone: UTC}}\n'
    spec = write_spec(tmp_path, proxy, schedule)
    out = tmp_path / "out"
    done = cli("run", str(spec), "--quiet", "--out", str(out))
    assert done.returncode == 3
    assert f"outside the allowed window (daily {start}–{end:%H:%M} UTC); next opens" in done.stdout  # noqa: RUF001
    assert "--wait-for-window" in done.stdout
    assert "proxy" not in journal_kinds(out)  # nothing was contacted


def test_waiting_for_the_window_returns_once_it_opens() -> None:
    clock = [datetime(2026, 11, 30, 0, 58, tzinfo=UTC)]  # a Monday, two minutes before
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += timedelta(seconds=seconds)

    schedule = Schedule.model_validate({"windows": ["mon-fri 01:00-05:00"]})
    said: list[str] = []
    asyncio.run(
        wait_for_window(schedule, wait=True, on_wait=said.append, now=lambda: clock[0], sleep=sleep)
    )
    assert clock[0] == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    assert slept == [30.0, 30.0, 30.0, 30.0]  # re-checked at least every 30 s
    assert said == [
        "waiting for the window (mon-fri 01:00–05:00 UTC): it opens 2026-11-30 01:00 UTC"  # noqa: RUF001
    ]
    with pytest.raises(RunError, match="outside the allowed window"):
        asyncio.run(
            wait_for_window(schedule, wait=False, now=lambda: clock[0] - timedelta(hours=3))
        )


def test_one_experiment_at_a_time_per_target(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "state")
    registry.register("run-a", "first", ["proxy http://127.0.0.1:1"])
    with pytest.raises(RunError, match="another experiment is running against proxy"):
        registry.register("run-b", "second", ["proxy http://127.0.0.1:1", "the process x"])
    registry.register("run-c", "other target", ["the process x"])
    # An entry left by a runner that died (its pid is gone) holds nothing.
    entry = json.loads((tmp_path / "state" / "run-a.json").read_text())
    entry["pid"] = 2**22 + 12345
    (tmp_path / "state" / "run-a.json").write_text(json.dumps(entry))
    registry.register("run-d", "after the dead one", ["proxy http://127.0.0.1:1"])
