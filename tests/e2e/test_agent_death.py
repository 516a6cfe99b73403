"""The agent's pauses survive the agent's death: SIGKILL it at random moments and every process
it paused runs again within its lease plus one second (its guardian resumes them at once)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import psutil

from mlchaos.agent import AgentClient
from mlchaos.process import ProcessSelector
from mlchaos.units import Duration
from tests.conftest import MLCHAOS, first_line

TRIALS = 20
LEASE = 5.0


def running_again_within(victim: psutil.Process, limit: float) -> float | None:
    """Seconds until the victim is no longer stopped; None if it stays stopped past limit."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if victim.status() != psutil.STATUS_STOPPED:
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


def pause(control: str, token: str, fault_id: str, pidfile: Path) -> dict[str, object]:
    async def go() -> dict[str, object]:
        async with AgentClient(control, token) as client:
            selector = ProcessSelector(pidfile=str(pidfile))
            return await client.pause(fault_id, selector, Duration(LEASE))

    return asyncio.run(go())


def test_sigkilled_agents_leave_no_process_paused(tmp_path: Path) -> None:
    rng = random.Random(20261201)
    delays: list[float] = []
    for trial in range(TRIALS):
        victim_proc = subprocess.Popen(["sleep", "60"])
        agent = subprocess.Popen([*MLCHAOS, "agent", "serve"], stdout=subprocess.PIPE, text=True)
        try:
            ready = json.loads(first_line(agent))
            token = Path(ready["token_file"]).read_text().strip()
            victim = psutil.Process(victim_proc.pid)
            pidfile = tmp_path / f"victim-{trial}.pid"
            pidfile.write_text(str(victim_proc.pid))
            answer = pause(ready["control"], token, f"trial-{trial}", pidfile)
            assert answer.get("confirmed", True)
            time.sleep(rng.uniform(0.0, 0.5))  # a random moment in the lease
            assert victim.status() == psutil.STATUS_STOPPED
            os.kill(agent.pid, signal.SIGKILL)
            agent.wait(timeout=10)
            took = running_again_within(victim, LEASE + 1.0)
            assert took is not None, f"trial {trial}: the victim stayed stopped"
            delays.append(took)
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
            assert agent.stdout is not None
            agent.stdout.close()
            victim_proc.kill()
            victim_proc.wait()
    assert len(delays) == TRIALS
    assert max(delays) < LEASE + 1.0
