"""CPU and memory faults against real processes: the agent moves the process into a cgroup of
its making (a CPU quota, a memory limit) and back out.

Each is measured in place — a CPU-bound process gets about its quota of CPU; an allocation past
the limit meets the OOM killer — and measured gone after removal, after its lease lapses (what
a runner killed with SIGKILL leaves: nobody renews), and after SIGKILL of the agent itself (its
guardian moves the process back). Needs root and the cgroup cpu and memory controllers; skipped
elsewhere, naming why, and required in CI (``MLCHAOS_REQUIRE_CGROUPS=1``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlchaos.agent import AgentClient, AgentServer
from mlchaos.errors import ControlAPIError
from mlchaos.faults import AgentInjector
from mlchaos.process import ProcessSelector
from mlchaos.units import Duration
from tests.conftest import AgentProcess

pytestmark = pytest.mark.usefixtures("needs_cgroups")

MIB = 2**20
ALLOCATE = """
import sys
held = []
for line in sys.stdin:
    held.append(bytearray(int(line) * 2**20))  # zero-filled: every page touched
    print("ok", flush=True)
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cpu_share(pid: int, seconds: float = 1.5) -> float:
    """The cores the process used over ``seconds``."""
    before = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def cgroups(pid: int) -> str:
    return Path(f"/proc/{pid}/cgroup").read_text()


def ours_left() -> list[Path]:
    """Every cgroup of mlchaos's making still on the host."""
    root = Path("/sys/fs/cgroup")
    return [p for p in root.rglob("mlchaos-*") if p.is_dir()]


def selector_of(pid: int, tmp_path: Path) -> ProcessSelector:
    path = tmp_path / f"{pid}.pid"
    path.write_text(str(pid))
    return ProcessSelector(pidfile=str(path))


@pytest.mark.asyncio
async def test_a_cpu_fault_holds_the_process_to_its_quota_until_removed_or_lapsed(
    tmp_path: Path, burner: subprocess.Popen[bytes]
) -> None:
    home = cgroups(burner.pid)
    selector = selector_of(burner.pid, tmp_path)
    async with (
        AgentServer(token_file=str(tmp_path / "agent.token")) as agent,
        AgentClient(agent.url, agent.token) as client,
    ):
        injector = AgentInjector(
            client, selector, lease=Duration(5), fault_id="cpu-0", agent="a", cpu=0.1
        )
        await injector.check()
        free = await cpu_share(burner.pid)
        await injector.inject()
        (held,) = await client.paused()
        assert held["action"] == "confine" and held["cgroup"]["confined"]
        confined = await cpu_share(burner.pid)
        await injector.remove()
        assert await injector.verify_removed()
        after = await cpu_share(burner.pid)
        assert cgroups(burner.pid) == home and not ours_left()
        # ≈ 10% of a core while confined (the kernel's quota), far more before and after
        assert 0.05 < confined < 0.16, (free, confined, after)
        assert free > 0.3 and after > 0.3, (free, confined, after)

        # Nobody renews (the runner died): the agent releases it when the lease lapses.
        lapsing = AgentInjector(
            client, selector, lease=Duration(0.6), fault_id="cpu-1", agent="a", cpu=0.1
        )
        await lapsing.inject()
        assert cgroups(burner.pid) != home
        t0 = time.monotonic()
        while cgroups(burner.pid) != home:
            assert time.monotonic() - t0 < 3
            await asyncio.sleep(0.05)
        assert 0.5 < time.monotonic() - t0 < 1.5
        assert not ours_left()


@pytest.mark.asyncio
async def test_a_memory_fault_makes_allocations_past_the_limit_fail_and_goes_away(
    tmp_path: Path,
) -> None:
    async def allocating(limit_mib: int, ask_mib: int, *, remove_first: bool) -> tuple[str, int]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", ALLOCATE, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert proc.stdin is not None and proc.stdout is not None
        injector = AgentInjector(
            client,
            selector_of(proc.pid, tmp_path),
            lease=Duration(10),
            fault_id=f"mem-{proc.pid}",
            agent="a",
            memory=limit_mib * MIB,
        )
        await injector.inject()
        if remove_first:
            await injector.remove()
        proc.stdin.write(f"{ask_mib}\n".encode())
        await proc.stdin.drain()
        answer = (await proc.stdout.readline()).decode().strip()
        proc.stdin.close()
        code = await proc.wait()
        await injector.remove()
        return answer, code

    async with (
        AgentServer(token_file=str(tmp_path / "agent.token")) as agent,
        AgentClient(agent.url, agent.token) as client,
    ):
        assert await allocating(64, 16, remove_first=False) == ("ok", 0)  # within the limit
        answer, code = await allocating(64, 256, remove_first=False)  # past it: the OOM killer
        assert (answer, code) == ("", -signal.SIGKILL)
        assert await allocating(64, 256, remove_first=True) == ("ok", 0)  # removed: no limit
    assert not ours_left()


def test_the_guardian_moves_the_process_back_when_the_agent_is_killed(
    tmp_path: Path, burner: subprocess.Popen[bytes], agent_process: AgentProcess
) -> None:
    home = cgroups(burner.pid)

    async def confine() -> None:
        async with AgentClient(agent_process.control, agent_process.token) as client:
            await client.confine("cpu-g", selector_of(burner.pid, tmp_path), Duration(60), cpu=0.2)

    asyncio.run(confine())
    assert cgroups(burner.pid) != home
    agent_process.kill()
    t0 = time.monotonic()
    while cgroups(burner.pid) != home:
        assert time.monotonic() - t0 < 5, "the guardian did not move it back"
        time.sleep(0.05)
    assert not ours_left()


@pytest.mark.asyncio
async def test_bad_limits_are_refused_with_one_clear_answer(
    tmp_path: Path, burner: subprocess.Popen[bytes]
) -> None:
    async with (
        AgentServer(token_file=str(tmp_path / "agent.token")) as agent,
        AgentClient(agent.url, agent.token) as client,
    ):
        selector = selector_of(burner.pid, tmp_path)
        with pytest.raises(ControlAPIError, match="greater than or equal to 1048576"):
            await client.confine("m", selector, Duration(5), memory=1024)
        with pytest.raises(ControlAPIError, match="greater than 0"):
            await client.confine("c", selector, Duration(5), cpu=0)
        assert await client.paused() == []
    assert not ours_left()
