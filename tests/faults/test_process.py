"""Kill faults: the process named by a pid file is signalled, and bad targets are refused."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlchaos.errors import PreflightError, RunError
from mlchaos.faults import KillInjector


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def pidfile(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "service.pid"
    path.write_text(content)
    return path


@pytest.mark.asyncio
async def test_a_checked_process_is_killed_with_the_chosen_signal(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    injector = KillInjector(pidfile(tmp_path, f"{sleeper.pid}\n"), signal.SIGTERM)
    await injector.check()
    assert sleeper.poll() is None  # checking sends nothing

    await injector.inject()

    assert sleeper.wait(timeout=5) == -signal.SIGTERM
    assert injector.killed_pid == sleeper.pid
    await injector.renew()
    await injector.remove()
    assert await injector.verify_removed()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "does not hold a process id"),
        ("12ab", "does not hold a process id"),
        ("1", "does not hold a process id"),
        (str(os.getpid()), "names mlchaos itself"),
        (str(os.getppid()), "names mlchaos itself"),
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
    with pytest.raises(PreflightError, match="cannot read pid file"):
        await KillInjector(tmp_path / "absent.pid", signal.SIGKILL).check()
    sleeper.kill()
    sleeper.wait()
    with pytest.raises(PreflightError, match="no process"):
        await KillInjector(pidfile(tmp_path, str(sleeper.pid)), signal.SIGKILL).check()
