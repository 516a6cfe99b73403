"""Process faults: the selected process is killed or paused, and bad targets are refused.

Real processes throughout: ``sleep`` for kills, a tiny listening Python process for the port
selector, and a real agent (its control API on loopback) for pauses.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from mlchaos.agent import AgentClient, AgentServer
from mlchaos.errors import ControlAPIError, PreflightError, RunError
from mlchaos.faults import AgentInjector, KillInjector
from mlchaos.process import ProcessSelector, resolve_process
from mlchaos.units import Duration
from tests.conftest import free_port, wait_for_port


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def pidfile(tmp_path: Path, content: str) -> ProcessSelector:
    path = tmp_path / "service.pid"
    path.write_text(content)
    return ProcessSelector(pidfile=str(path))


def state(pid: int) -> str:
    return psutil.Process(pid).status()


@pytest.mark.asyncio
async def test_a_checked_process_is_killed_with_the_chosen_signal(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    injector = KillInjector(pidfile(tmp_path, f"{sleeper.pid}\n"), signal.SIGTERM)
    await injector.check()
    assert sleeper.poll() is None  # checking sends nothing

    await injector.inject()

    assert sleeper.wait(timeout=5) == -signal.SIGTERM
    assert injector.killed_pids == [sleeper.pid]
    await injector.renew()
    await injector.remove()
    assert await injector.verify_removed()


@pytest.mark.asyncio
async def test_the_restart_command_runs_once_when_the_kill_is_removed(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    marker = tmp_path / "restarted"
    restart = [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x')"]
    injector = KillInjector(pidfile(tmp_path, str(sleeper.pid)), signal.SIGKILL, restart)
    await injector.remove()
    assert not marker.exists()  # nothing was killed: nothing to restart
    await injector.inject()
    await injector.remove()
    await injector.remove()
    assert marker.read_text() == "x"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "does not hold a process id"),
        ("12ab", "does not hold a process id"),
        ("1", "does not hold a process id"),
        (str(os.getpid()), "mlchaos itself or one of its ancestors"),
        (str(os.getppid()), "mlchaos itself or one of its ancestors"),
    ],
)
async def test_a_pid_file_that_names_no_safe_target_is_refused_before_injection(
    tmp_path: Path, content: str, message: str
) -> None:
    injector = KillInjector(pidfile(tmp_path, content), signal.SIGKILL)
    with pytest.raises(PreflightError, match=message):
        await injector.check()
    with pytest.raises(RunError, match=message):
        await injector.inject()


@pytest.mark.asyncio
async def test_a_missing_pid_file_or_a_dead_process_is_refused(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    missing = ProcessSelector(pidfile=str(tmp_path / "absent.pid"))
    with pytest.raises(PreflightError, match="cannot read pid file"):
        await KillInjector(missing, signal.SIGKILL).check()
    sleeper.kill()
    sleeper.wait()
    with pytest.raises(PreflightError, match="no running process"):
        await KillInjector(pidfile(tmp_path, str(sleeper.pid)), signal.SIGKILL).check()


def test_a_process_is_found_by_its_command_line_or_by_the_port_it_listens_on() -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, time; s = socket.socket(); "
            f"s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)",
            "mlchaos-selector-test",
        ]
    )
    try:
        wait_for_port(port)
        by_port = resolve_process(ProcessSelector(port=port))
        by_pattern = resolve_process(ProcessSelector(pattern=r"mlchaos-selector-te[s]t"))
        assert by_port.pid == by_pattern.pid == server.pid
        assert by_port.alive() is not None
    finally:
        server.kill()
        server.wait()
    with pytest.raises(RunError, match="no running process"):
        resolve_process(ProcessSelector(port=port))
    marker = f"3{os.getpid()}.25"  # `sleep 3<pid>.25`: these three and nothing else
    crowd = [subprocess.Popen(["sleep", marker]) for _ in range(3)]
    try:
        with pytest.raises(RunError, match="3 processes match"):
            resolve_process(ProcessSelector(pattern=rf"^sleep {marker}$"))
    finally:
        for proc in crowd:
            proc.kill()
            proc.wait()
    with pytest.raises(ValueError, match="exactly one"):
        ProcessSelector(pidfile="a", port=1)


@pytest.mark.asyncio
async def test_a_pause_is_held_by_the_agent_and_resumed_on_removal_or_when_its_lease_lapses(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    selector = pidfile(tmp_path, str(sleeper.pid))
    async with (
        AgentServer(token_file=str(tmp_path / "agent.token")) as agent,
        AgentClient(agent.url, agent.token) as client,
    ):
        assert (tmp_path / "agent.token").stat().st_mode & 0o777 == 0o600
        injector = AgentInjector(client, selector, lease=Duration(0.6), fault_id="run-0", agent="a")
        await injector.check()
        assert state(sleeper.pid) != psutil.STATUS_STOPPED  # checking pauses nothing

        await injector.inject()
        assert state(sleeper.pid) == psutil.STATUS_STOPPED
        await asyncio.sleep(0.4)
        await injector.renew()
        await asyncio.sleep(0.4)  # past the first lease, inside the renewed one
        assert state(sleeper.pid) == psutil.STATUS_STOPPED
        await injector.remove()
        assert state(sleeper.pid) != psutil.STATUS_STOPPED
        assert await injector.verify_removed()

        await injector.inject()  # and now nobody renews: the agent resumes it by itself
        t0 = time.monotonic()
        while state(sleeper.pid) == psutil.STATUS_STOPPED:
            assert time.monotonic() - t0 < 3
            await asyncio.sleep(0.05)
        assert 0.5 < time.monotonic() - t0 < 1.5
        assert (await client.health())["resumed_by_lease"] == 1

        await injector.inject()
    # stopping the agent resumed what it still held
    assert state(sleeper.pid) != psutil.STATUS_STOPPED


@pytest.mark.asyncio
async def test_the_agent_refuses_a_bad_selector_or_token(tmp_path: Path) -> None:
    async with AgentServer(token_file=str(tmp_path / "t")) as agent:
        async with AgentClient(agent.url, agent.token) as client:
            with pytest.raises(ControlAPIError, match=r"409.*cannot read pid file"):
                await client.check(ProcessSelector(pidfile=str(tmp_path / "none.pid")))
            with pytest.raises(ControlAPIError, match="404"):
                await client.renew("nope")
        async with AgentClient(agent.url, "wrong") as client:
            with pytest.raises(ControlAPIError, match="401"):
                await client.health()


@pytest.fixture
def replicas() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Four processes with one marker in their command line: the N replicas of a service."""
    marker = f"mlchaos-test-replica-{os.getpid()}"
    procs = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
        for _ in range(4)
    ]
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def dead_once_reaped(procs: list[subprocess.Popen[bytes]], signalled: list[int]) -> int:
    """How many of ``procs`` are dead, once every ``signalled`` one has been reaped (no other
    was sent a signal, so the count is final)."""
    for proc in procs:
        if proc.pid in signalled:
            proc.wait(timeout=10)
    return sum(p.poll() is not None for p in procs)


@pytest.mark.asyncio
@pytest.mark.parametrize(("pick", "killed"), [("one", 1), ("50%", 2), ("60%", 3)])
async def test_a_kill_can_pick_one_or_a_share_of_the_matching_replicas(
    replicas: list[subprocess.Popen[bytes]], pick: str, killed: int
) -> None:
    marker = f"mlchaos-test-replica-{os.getpid()}"
    selector = ProcessSelector.model_validate({"pattern": marker, "pick": pick})
    assert selector.describe().startswith(f"{pick} of the processes matching")
    injector = KillInjector(selector, signal.SIGKILL)
    await injector.check()
    await injector.inject()
    assert len(injector.killed_pids) == killed
    assert dead_once_reaped(replicas, injector.killed_pids) == killed


@pytest.mark.asyncio
async def test_without_pick_several_matches_are_refused_naming_the_way_out(
    replicas: list[subprocess.Popen[bytes]],
) -> None:
    selector = ProcessSelector(pattern=f"mlchaos-test-replica-{os.getpid()}")
    with pytest.raises(PreflightError, match=r"4 processes match .*'pick: one'"):
        await KillInjector(selector, signal.SIGKILL).check()
    assert dead_once_reaped(replicas, []) == 0  # check() signals nothing


def test_a_share_of_the_replicas_counts_as_that_many_targets_against_the_caps(
    replicas: list[subprocess.Popen[bytes]],
) -> None:
    from mlchaos.safety import SiteConfig, cap_violations
    from mlchaos.spec import Experiment

    exp = Experiment.model_validate(
        {
            "title": "half the replicas crash",
            "environment": "staging",
            "traffic": {
                "target": "http://127.0.0.1:1",
                "dataset": "d.csv",
                "rate": "1/s",
                "duration": "5s",
                "request": {"protocol": "v2", "model": "m"},
                "arms": {"experiment": "5%", "control": "5%"},
            },
            "faults": [
                {
                    "type": "kill",
                    "process": {"pattern": f"mlchaos-test-replica-{os.getpid()}", "pick": "50%"},
                }
            ],
            "hypothesis": [{"metric": "error_rate", "max": "5%"}],
        }
    )
    site = SiteConfig.model_validate(
        {"profiles": {"staging": {"process_targets": ["mlchaos-test-replica"]}}}
    )
    staging = site.profile("staging")
    assert staging is not None
    (found,) = cap_violations(exp, "staging", staging)
    assert found.startswith("max_targets: the faults affect 2 targets")
    # Without its processes declared, staging refuses any process fault.
    builtin = SiteConfig().profile("staging")
    assert builtin is not None
    assert any(
        v.startswith("process_targets: staging allows no process fault")
        for v in cap_violations(exp, "staging", builtin)
    )
    assert dead_once_reaped(replicas, []) == 0  # counting them touches nothing
