"""Process faults act only on what the experiment names: never mlchaos, its ancestors, init, an
mlchaos runner or agent, another user's process, a reused pid, or a bounded-badly selector."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlchaos.errors import RunError
from mlchaos.process import ProcessSelector, resolve_processes
from tests.conftest import MLCHAOS, ROOT, Spawn, first_line


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "30"])
    yield proc
    proc.kill()
    proc.wait()


def resolve(**fields: object) -> list[int]:
    return [t.pid for t in resolve_processes(ProcessSelector.model_validate(fields))]


@pytest.fixture
def crowd() -> Iterator[list[subprocess.Popen[bytes]]]:
    """25 processes, so that a broad pattern matches more than 20 on any machine."""
    procs = [subprocess.Popen(["sleep", "30"]) for _ in range(25)]
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_pattern_matching_everything_is_too_broad_even_to_pick_one(
    crowd: list[subprocess.Popen[bytes]],
) -> None:
    """`kill` with pattern '.', pick one, SIGKILL once passed validate, admission and rehearse:
    as root it would have killed a random host process."""
    with pytest.raises(RunError, match=r"more than 20, too broad to be a target"):
        resolve(pattern=".", pick="one")
    with pytest.raises(RunError, match=r"more than 20, too broad to be a target"):
        resolve(pattern=r"^sleep 30$", pick="one")


def test_a_pattern_never_matches_the_resolver_its_ancestors_or_an_mlchaos_agent(
    spawn: Spawn,
) -> None:
    """A pause whose pattern matched the runner once paused the runner itself for ~5 s."""
    agent = spawn("agent", "serve")
    first_line(agent)
    with pytest.raises(RunError, match="no running process"):
        resolve(pattern=r"mlchaos agent serve")  # only the agent matches: it is protected
    # A resolver whose pattern matches only itself (its command line carries the marker).
    marker = f"resolver-{os.getpid()}-marker"
    code = (
        "import sys\n"
        "from mlchaos.errors import RunError\n"
        "from mlchaos.process import ProcessSelector, resolve_processes\n"
        f"try:\n    resolve_processes(ProcessSelector(pattern={marker!r}))\n"
        "except RunError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, marker], capture_output=True, text=True, timeout=30
    )
    assert "no running process" in done.stdout, done.stdout + done.stderr


def test_a_pid_file_naming_a_protected_process_is_refused_with_why(tmp_path: Path) -> None:
    pidfile = tmp_path / "p.pid"
    for pid, why in ((os.getppid(), "ancestors"), (1, "does not hold a process id")):
        pidfile.write_text(str(pid))
        with pytest.raises(RunError, match=why):
            resolve(pidfile=str(pidfile))


def test_a_reused_pid_is_never_trusted(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """The pid file was written before its process started: the pid is someone else's now."""
    pidfile = tmp_path / "p.pid"
    pidfile.write_text(str(sleeper.pid))
    assert resolve(pidfile=str(pidfile)) == [sleeper.pid]
    old = time.time() - 3600
    os.utime(pidfile, (old, old))
    with pytest.raises(RunError, match="the pid was reused by another process"):
        resolve(pidfile=str(pidfile))


def test_a_pid_file_that_is_a_fifo_or_a_device_is_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.pid"
    os.mkfifo(fifo)  # nobody writes: reading it would hang the agent and the runner
    with pytest.raises(RunError, match="not a regular file"):
        resolve(pidfile=str(fifo))
    (tmp_path / "zero.pid").symlink_to("/dev/zero")  # reading it grew the agent to 23 GB
    with pytest.raises(RunError, match="not a regular file"):
        resolve(pidfile=str(tmp_path / "zero.pid"))
    big = tmp_path / "big.pid"
    big.write_text("1" * 100)
    with pytest.raises(RunError, match="holds 100 bytes"):
        resolve(pidfile=str(big))


@pytest.mark.skipif(os.getuid() != 0, reason="starting a process as another user needs root")
def test_a_process_of_another_user_is_never_a_target(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"], user="nobody")
    try:
        pidfile = tmp_path / "p.pid"
        pidfile.write_text(str(other.pid))
        with pytest.raises(RunError, match="a process of another user"):
            resolve(pidfile=str(pidfile))
    finally:
        other.kill()
        other.wait()


def test_the_cli_refuses_a_broad_kill_at_rehearsal(
    tmp_path: Path, upstream: int, crowd: list[subprocess.Popen[bytes]]
) -> None:
    """Through the whole tool: validate passes (the file is well formed), rehearse refuses."""
    spec = tmp_path / "kill.yaml"
    spec.write_text(
        f"""
title: kill anything
traffic:
  target: http://127.0.0.1:{upstream}
  dataset: {ROOT / "examples" / "data" / "toy.csv"}
  rate: 1/s
  duration: 5s
  request: {{protocol: v2, model: toy}}
  label: label
  key: entity_id
faults:
  - {{type: kill, process: {{pattern: ".", pick: one}}, signal: SIGKILL, start: 1s}}
hypothesis:
  - {{metric: error_rate, max: 50%}}
"""
    )
    done = subprocess.run([*MLCHAOS, "validate", str(spec)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [*MLCHAOS, "rehearse", str(spec), "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "too broad to be a target" in done.stdout + done.stderr


def test_rehearsal_names_the_processes_a_kill_would_hit_and_sends_nothing() -> None:
    import asyncio
    import signal

    from mlchaos.faults import KillInjector

    marker = f"{os.getpid()}.5"  # `sleep 3<pid>.5`: only these three match
    procs = [subprocess.Popen(["sleep", f"3{marker}"]) for _ in range(3)]
    try:
        selector = ProcessSelector(pattern=rf"^sleep 3{marker}$", pick="one")
        said = asyncio.run(KillInjector(selector, signal.SIGKILL).rehearse())
        assert all(p.poll() is None for p in procs), "the rehearsal sent nothing"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert said.startswith("would send SIGKILL to 1 of ")
    for proc in procs:
        assert f"(pid {proc.pid})" in said


def test_outside_the_sandbox_a_process_fault_needs_its_targets_declared(
    sleeper: subprocess.Popen[bytes],
) -> None:
    from mlchaos.safety import SiteConfig, cap_violations
    from tests.safety.test_caps import experiment

    kill = [{"type": "kill", "process": {"pattern": "^sleep 30$"}, "start": "1s"}]
    exp = experiment(
        environment="staging", faults=kill, hypothesis=[{"metric": "error_rate", "max": "5%"}]
    )
    staging = SiteConfig().profile("staging")
    assert staging is not None
    assert any("allows no process fault" in v for v in cap_violations(exp, "staging", staging))
    declared = SiteConfig.model_validate(
        {"profiles": {"staging": {"process_targets": ["^/usr/sbin/nginx"]}}}
    ).profile("staging")
    assert declared is not None
    found = [v for v in cap_violations(exp, "staging", declared) if "process_targets" in v]
    assert found and f"pid {sleeper.pid}" in found[0] and "does not declare" in found[0]
    allowed = SiteConfig.model_validate(
        {"profiles": {"staging": {"process_targets": ["^sleep "]}}}
    ).profile("staging")
    assert allowed is not None
    assert not [v for v in cap_violations(exp, "staging", allowed) if "process_targets" in v]
    assert SiteConfig().profile("sandbox").process_targets is None  # type: ignore[union-attr]
