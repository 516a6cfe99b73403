"""Network partitions against real processes in network namespaces of their own.

Two listeners, each in its own namespace on the isolation mode's bridge (``IsolatedNetwork``,
as the demo uses). The agent cuts them apart and the test measures it from inside the
namespaces: TCP connects time out (silent) or fail at once (loud), datagrams do not pass the cut
way and do pass the other — while the host still reaches both. Then it measures the cut gone:
after removal, after the lease lapses (what a runner killed with SIGKILL leaves: nobody
renews), and after SIGKILL of the agent (its guardian deletes the rules). Needs root, ``ip``
and ``nsenter``; skipped elsewhere, naming why; required in CI (``MLCHAOS_REQUIRE_NETNS=1``).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from mlchaos.agent import AgentClient, AgentServer
from mlchaos.demo._isolation import IsolatedNetwork, Member
from mlchaos.demo._services import ServiceGroup, ServiceSpec
from mlchaos.errors import ControlAPIError, PreflightError
from mlchaos.faults._process import AgentInjector, Cut
from mlchaos.process import ProcessSelector
from mlchaos.units import Duration
from tests.conftest import AgentProcess

pytestmark = pytest.mark.usefixtures("needs_netns")

LISTEN = """
import json, os, socket
s = socket.create_server((os.environ["MLCHAOS_DEMO_BIND"], 0))
print(json.dumps({"ready": True, "port": s.getsockname()[1]}), flush=True)
while True:
    s.accept()[0].close()
"""
CONNECT = """
import socket, sys, time
s = socket.socket()
s.settimeout(float(sys.argv[3]))
t0 = time.monotonic()
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("ok", time.monotonic() - t0)
except TimeoutError:
    print("timeout", time.monotonic() - t0)
except OSError as exc:
    print(f"refused:{exc.errno}", time.monotonic() - t0)
"""
RECEIVE = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
print(s.getsockname()[1], flush=True)
s.settimeout(1.0)
n = 0
try:
    while n < 20:
        s.recv(100)
        n += 1
except TimeoutError:
    pass
print(n, flush=True)
"""
SEND = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(20):
    s.sendto(b"x", (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.005)
"""


@dataclass
class Side:
    member: Member
    pid: int
    port: int
    selector: ProcessSelector

    def connect(self, other: Side, timeout: float = 1.0) -> tuple[str, float]:
        """Connect from this side's namespace to the other's listener: ok, timeout or
        refused:errno, and how long the connect took."""
        argv = [sys.executable, "-c", CONNECT, other.member.address, str(other.port), str(timeout)]
        outcome, took = subprocess.run(
            [*self.member.enter(), *argv], capture_output=True, text=True, check=True
        ).stdout.split()
        return outcome, float(took)

    def datagrams_to(self, other: Side) -> int:
        """Of 20 datagrams sent from here to the other side, how many arrived."""
        receiver = subprocess.Popen(
            [*other.member.enter(), sys.executable, "-c", RECEIVE, other.member.address],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert receiver.stdout is not None
        port = receiver.stdout.readline().strip()
        subprocess.run(
            [*self.member.enter(), sys.executable, "-c", SEND, other.member.address, port],
            check=True,
        )
        count = int(receiver.stdout.readline())
        receiver.wait()
        receiver.stdout.close()
        return count

    def rules(self) -> str:
        return subprocess.run(
            [*self.member.enter(), "ip", "rule"], capture_output=True, text=True, check=True
        ).stdout


@dataclass
class Pair:
    a: Side
    b: Side

    def host_reaches_both(self) -> bool:
        for side in (self.a, self.b):
            with socket.create_connection((side.member.address, side.port), timeout=1):
                pass
        return True

    def pristine(self) -> bool:
        """Neither namespace holds a rule of ours: each lists its own three rules."""
        return all(
            s.rules().startswith("0:\tfrom all lookup local\n32766:") for s in (self.a, self.b)
        )

    def whole(self) -> bool:
        """Both ways pass, and neither namespace holds a rule of ours."""
        return (
            self.a.connect(self.b)[0] == "ok"
            and self.b.connect(self.a)[0] == "ok"
            and self.pristine()
        )


@pytest_asyncio.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    async with ServiceGroup(grace=1.0) as group:
        net = IsolatedNetwork(group)
        await net.start()
        sides = []
        for name in ("a", "b"):
            member = await net.add(name)
            argv = [*member.enter(), sys.executable, "-c", LISTEN]
            service = await group.start(
                ServiceSpec(name, argv, env={"MLCHAOS_DEMO_BIND": member.address})
            )
            pidfile = tmp_path / f"{name}.pid"
            pidfile.write_text(str(service.pid))
            sides.append(
                Side(member, service.pid, service.port, ProcessSelector(pidfile=str(pidfile)))
            )
        yield Pair(*sides)
        await net.close()


@pytest.mark.asyncio
async def test_a_silent_partition_drops_both_ways_until_removed(tmp_path: Path, pair: Pair) -> None:
    assert pair.whole()
    async with (
        AgentServer(token_file=str(tmp_path / "agent.token")) as agent,
        AgentClient(agent.url, agent.token) as client,
    ):
        answer = await client.partition("p", pair.a.selector, pair.b.selector, Duration(30))
        assert answer["confirmed"] is True and answer["action"] == "partition"
        assert await asyncio.to_thread(pair.a.connect, pair.b) >= ("timeout", 0.9)
        assert await asyncio.to_thread(pair.b.connect, pair.a) >= ("timeout", 0.9)
        assert await asyncio.to_thread(pair.a.datagrams_to, pair.b) == 0
        assert await asyncio.to_thread(pair.b.datagrams_to, pair.a) == 0
        assert pair.host_reaches_both()  # only the two are cut apart
        await client.remove("p")
        assert await asyncio.to_thread(pair.whole)
        assert await asyncio.to_thread(pair.a.datagrams_to, pair.b) == 20


@pytest.mark.asyncio
async def test_a_one_way_partition_drops_only_that_way(tmp_path: Path, pair: Pair) -> None:
    async with (
        AgentServer(token_file=str(tmp_path / "agent.token")) as agent,
        AgentClient(agent.url, agent.token) as client,
    ):
        await client.partition(
            "p", pair.a.selector, pair.b.selector, Duration(30), direction="outbound"
        )
        assert await asyncio.to_thread(pair.a.datagrams_to, pair.b) == 0
        assert await asyncio.to_thread(pair.b.datagrams_to, pair.a) == 20
        await client.remove("p")
        assert await asyncio.to_thread(pair.a.datagrams_to, pair.b) == 20


@pytest.mark.asyncio
async def test_a_loud_partition_refuses_at_once_and_one_way_only_tells_the_sender(
    tmp_path: Path, pair: Pair
) -> None:
    async with (
        AgentServer(token_file=str(tmp_path / "agent.token")) as agent,
        AgentClient(agent.url, agent.token) as client,
    ):
        await client.partition(
            "p", pair.a.selector, pair.b.selector, Duration(30), direction="outbound", mode="loud"
        )
        outcome, took = await asyncio.to_thread(pair.a.connect, pair.b, 5.0)
        assert outcome == "refused:13" and took < 0.5  # EACCES, with no packet sent
        # The peer's own connects get no answer back (its SYN-ACKs are refused): they time out.
        assert (await asyncio.to_thread(pair.b.connect, pair.a))[0] == "timeout"
        await client.remove("p")
        assert await asyncio.to_thread(pair.whole)


@pytest.mark.asyncio
async def test_a_partition_whose_lease_lapses_is_undone(tmp_path: Path, pair: Pair) -> None:
    async with (
        AgentServer(token_file=str(tmp_path / "agent.token")) as agent,
        AgentClient(agent.url, agent.token) as client,
    ):
        await client.partition("p", pair.a.selector, pair.b.selector, Duration(1.0), mode="loud")
        assert (await asyncio.to_thread(pair.a.connect, pair.b))[0] == "refused:13"
        await asyncio.sleep(1.5)  # nobody renews: a runner killed with SIGKILL
        assert await client.paused() == []
        assert agent.table is not None and agent.table.resumed_by_lease == 1
        await agent.table.settle()  # the undoing runs in a thread: wait for it, not for luck
        assert await asyncio.to_thread(pair.whole)


@pytest.mark.asyncio
async def test_the_guardian_deletes_the_rules_when_the_agent_is_killed(
    pair: Pair, agent_process: AgentProcess
) -> None:
    async with AgentClient(agent_process.control, agent_process.token) as client:
        await client.partition("p", pair.a.selector, pair.b.selector, Duration(60))
    assert "blackhole" in pair.a.rules() and "blackhole" in pair.b.rules()
    agent_process.kill()
    t0 = time.monotonic()
    # the guardian deletes the rules, then puts the local table's lookup back: wait for both
    while not await asyncio.to_thread(pair.pristine):
        assert time.monotonic() - t0 < 5, "the guardian did not delete the rules"
        await asyncio.sleep(0.05)
    assert await asyncio.to_thread(pair.whole)


@pytest.mark.asyncio
async def test_what_cannot_be_cut_is_refused_before_anything_is_done(
    tmp_path: Path, pair: Pair
) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])  # noqa: ASYNC220 - one on the host's network
    host = tmp_path / "host.pid"
    host.write_text(str(sleeper.pid))
    on_host = ProcessSelector(pidfile=str(host))
    async with (
        AgentServer(token_file=str(tmp_path / "agent.token")) as agent,
        AgentClient(agent.url, agent.token) as client,
    ):
        with pytest.raises(ControlAPIError, match="one network namespace"):
            await client.partition("p", pair.a.selector, pair.a.selector, Duration(5))
        with pytest.raises(ControlAPIError, match=f"pid {sleeper.pid} is in the agent's own"):
            await client.partition("p", pair.a.selector, on_host, Duration(5))
        injector = AgentInjector(
            client,
            pair.a.selector,
            lease=Duration(5),
            fault_id="x",
            agent="agent",
            partition=Cut(on_host),
        )
        with pytest.raises(PreflightError, match="the host's\\) network namespace"):
            await injector.check()
        assert await client.paused() == []
    sleeper.kill()
    sleeper.wait()
    assert await asyncio.to_thread(pair.whole)


@pytest.mark.asyncio
async def test_the_injector_cuts_and_verifies_the_cut_gone(tmp_path: Path, pair: Pair) -> None:
    async with (
        AgentServer(token_file=str(tmp_path / "agent.token")) as agent,
        AgentClient(agent.url, agent.token) as client,
    ):
        injector = AgentInjector(
            client,
            pair.a.selector,
            lease=Duration(5),
            fault_id="cut",
            agent="agent",
            partition=Cut(pair.b.selector, "inbound", "loud"),
        )
        await injector.check()
        assert injector.label.startswith("loud partition (one way, in) between the process in")
        await injector.inject()
        assert (await asyncio.to_thread(pair.b.connect, pair.a))[0] == "refused:13"
        await injector.renew()
        await injector.remove()
        assert await injector.verify_removed()
        assert await asyncio.to_thread(pair.whole)
