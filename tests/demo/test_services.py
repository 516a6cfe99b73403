"""The service supervisor starts real processes and leaves none behind, even when SIGKILLed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from mlchaos.demo._services import ServiceGroup, ServiceSpec, ServiceStartError

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the supervisor targets Linux")

# A tiny service; its first argument picks how it behaves.
SERVICE = r"""
import json, os, signal, socket, subprocess, sys, time
mode = sys.argv[1]
if mode == "silent":
    if os.environ.get("PID_FILE"):
        with open(os.environ["PID_FILE"], "w") as f:
            f.write(str(os.getpid()))
    print("warming up", flush=True)
    time.sleep(60)
if mode == "crash":
    print("loading model", flush=True)
    print("boom: model file is corrupt", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "portless":
    print(json.dumps({"ready": True}), flush=True)
    time.sleep(60)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
mark = os.environ.get("MARK_FILE")
if mark:
    def on_term(signum, frame):
        with open(mark, "a") as f:
            f.write(os.environ["NAME"] + "\n")
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
extra = {}
if mode == "parent":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    extra["child"] = child.pid
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()
print("starting", flush=True)
print(json.dumps({"ready": True, "name": os.environ.get("NAME", "svc"),
                  "port": sock.getsockname()[1], **extra}), flush=True)
if mode == "chatty":
    for i in range(3000):
        print(f"log line {i:04d} " + "x" * 80)
    print("done chatting", flush=True)
while True:
    conn, _ = sock.accept()
    conn.sendall(b"hello\n")
    conn.close()
"""


def spec(name: str, mode: str = "serve", **kwargs: object) -> ServiceSpec:
    env = {"NAME": name, **kwargs.pop("env", {})}  # type: ignore[dict-item]
    return ServiceSpec(name, [sys.executable, "-c", SERVICE, mode], env=env, **kwargs)  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody reaped yet counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def assert_gone(pid: int) -> None:
    """Reaped, not merely dead: no such pid at all, in the kernel or in /proc."""
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not Path(f"/proc/{pid}").exists()


async def wait_dead(pids: Iterable[int], within: float) -> None:
    deadline = time.monotonic() + within
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if alive(pid)}
        await asyncio.sleep(0.02)
    assert not {pid for pid in pending if alive(pid)}, f"still alive after {within}s"


@pytest.mark.asyncio
async def test_start_returns_once_ready_with_pid_port_and_ready_info() -> None:
    async with ServiceGroup() as group:
        service = await group.start(spec("model-a"))
        assert service.name == "model-a"
        assert service.info["ready"] is True
        assert service.info["name"] == "model-a"
        assert service.port == service.info["port"]
        assert group.running("model-a")
        assert alive(service.pid)
        assert os.getpgid(service.pid) == service.pid  # its own process group
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        assert await reader.readline() == b"hello\n"
        writer.close()
        await writer.wait_closed()
        assert service.log_tail() == ["starting"]


@pytest.mark.asyncio
async def test_stop_terminates_and_reaps_the_process() -> None:
    async with ServiceGroup() as group:
        service = await group.start(spec("model-a"))
        code = await group.stop("model-a")
        assert code == -signal.SIGTERM
        assert not group.running("model-a")
        assert_gone(service.pid)


@pytest.mark.asyncio
async def test_stop_kills_grandchildren_in_the_process_group() -> None:
    async with ServiceGroup() as group:
        service = await group.start(spec("model-a", "parent"))
        child = service.info["child"]
        assert isinstance(child, int)
        assert alive(child)
        await group.stop("model-a")
    await wait_dead([child], within=2.0)


@pytest.mark.asyncio
async def test_leaving_the_group_stops_every_service_in_reverse_start_order(
    tmp_path: Path,
) -> None:
    mark = tmp_path / "stopped"
    env = {"MARK_FILE": str(mark)}
    async with ServiceGroup() as group:
        pids = [(await group.start(spec(name, env=env))).pid for name in ("a", "b", "c")]
    assert mark.read_text().split() == ["c", "b", "a"]
    for pid in pids:
        assert_gone(pid)


@pytest.mark.asyncio
async def test_a_service_that_never_gets_ready_times_out_naming_it_and_is_killed() -> None:
    async with ServiceGroup() as group:
        with pytest.raises(ServiceStartError) as caught:
            await group.start(spec("slow-model", "silent", ready_timeout=0.5))
    error = caught.value
    assert "'slow-model'" in str(error)
    assert "no ready line within 0.5s" in str(error)
    assert "warming up" in str(error)
    assert_gone(error.pid)


@pytest.mark.asyncio
async def test_a_service_that_exits_before_ready_reports_exit_code_and_last_output() -> None:
    async with ServiceGroup() as group:
        with pytest.raises(ServiceStartError) as caught:
            await group.start(spec("model-b", "crash"))
    error = caught.value
    assert error.returncode == 3
    assert "'model-b'" in str(error)
    assert "exited with code 3" in str(error)
    assert "loading model" in str(error)
    assert "boom: model file is corrupt" in str(error)  # stderr is captured too
    assert_gone(error.pid)


@pytest.mark.asyncio
async def test_a_ready_line_without_a_port_is_refused_and_the_service_stopped() -> None:
    async with ServiceGroup() as group:
        with pytest.raises(ServiceStartError, match="without an integer port") as caught:
            await group.start(spec("portless", "portless"))
    assert_gone(caught.value.pid)


@pytest.mark.asyncio
async def test_cancelling_a_start_leaves_no_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    async with ServiceGroup() as group:
        task = asyncio.create_task(
            group.start(spec("slow", "silent", env={"PID_FILE": str(pid_file)}))
        )
        async with asyncio.timeout(5):
            while not pid_file.exists() or not pid_file.read_text():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert_gone(int(pid_file.read_text()))


@pytest.mark.asyncio
async def test_a_program_that_cannot_be_run_reports_why() -> None:
    async with ServiceGroup() as group:
        with pytest.raises(ServiceStartError) as caught:
            await group.start(ServiceSpec("ghost", ["/nonexistent/program"]))
    assert caught.value.returncode == 127
    assert "cannot run '/nonexistent/program'" in str(caught.value)


@pytest.mark.asyncio
async def test_restart_starts_a_new_process_from_the_same_spec() -> None:
    async with ServiceGroup() as group:
        first = await group.start(spec("model-a"))
        second = await group.restart("model-a")
        assert second.pid != first.pid
        assert second.spec == first.spec
        assert group.service("model-a") is second
        assert group.running("model-a")
        assert_gone(first.pid)


@pytest.mark.asyncio
async def test_kill_with_sigkill_is_noticed_and_the_service_can_be_restarted() -> None:
    async with ServiceGroup() as group:
        service = await group.start(spec("replica-1"))
        await group.kill("replica-1", signal.SIGKILL)
        assert not group.running("replica-1")
        assert service.returncode == -signal.SIGKILL
        assert_gone(service.pid)
        again = await group.restart("replica-1")
        assert group.running("replica-1")
        assert again.pid != service.pid


@pytest.mark.asyncio
async def test_an_exit_the_group_did_not_cause_is_noticed() -> None:
    async with ServiceGroup() as group:
        service = await group.start(spec("replica-1"))
        os.kill(service.pid, signal.SIGKILL)  # a crash from outside
        async with asyncio.timeout(2):
            assert await service.wait() == -signal.SIGKILL
        assert not group.running("replica-1")


@pytest.mark.asyncio
async def test_a_service_that_ignores_sigterm_is_sigkilled_after_the_grace_period() -> None:
    async with ServiceGroup(grace=0.3) as group:
        service = await group.start(spec("stubborn", "stubborn"))
        started = time.monotonic()
        code = await group.stop("stubborn")
        elapsed = time.monotonic() - started
    assert code == -signal.SIGKILL
    assert 0.3 <= elapsed < 3
    assert_gone(service.pid)


@pytest.mark.asyncio
async def test_output_after_ready_is_drained_so_a_chatty_service_never_blocks() -> None:
    async with ServiceGroup() as group:
        service = await group.start(spec("chatty", "chatty"))
        async with asyncio.timeout(5):
            while "done chatting" not in service.log_tail():  # noqa: ASYNC110 - no event to await
                await asyncio.sleep(0.02)
        assert service.log_tail()[-2].startswith("log line 2999")
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        assert await reader.readline() == b"hello\n"
        writer.close()
        await writer.wait_closed()


@pytest.mark.asyncio
async def test_starting_a_name_that_is_already_running_is_refused() -> None:
    async with ServiceGroup() as group:
        await group.start(spec("model-a"))
        with pytest.raises(ValueError, match="already running"):
            await group.start(spec("model-a"))


def test_a_spec_reports_every_problem_at_once() -> None:
    with pytest.raises(ValueError, match=r"argv: must name a program.*ready_timeout: must be"):
        ServiceSpec("x", [], ready_timeout=0)


SUPERVISOR = r"""
import asyncio, json, sys
from mlchaos.demo._services import ServiceGroup, ServiceSpec
async def main():
    group = ServiceGroup()
    a = await group.start(ServiceSpec("a", [sys.executable, "-c", sys.argv[1], "serve"]))
    b = await group.start(ServiceSpec("b", [sys.executable, "-c", sys.argv[1], "serve"]))
    print(json.dumps([a.pid, b.pid]), flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
"""


@pytest.mark.asyncio
async def test_services_die_when_their_supervisor_is_sigkilled() -> None:
    """PR_SET_PDEATHSIG: a SIGKILLed supervisor cannot clean up, so the kernel does."""
    supervisor = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SUPERVISOR,
        SERVICE,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    pids: list[int] = []
    try:
        assert supervisor.stdout is not None
        async with asyncio.timeout(10):
            pids = json.loads(await supervisor.stdout.readline())
        assert len(pids) == 2
        assert all(alive(pid) for pid in pids)
        supervisor.kill()
        await supervisor.wait()
        await wait_dead(pids, within=1.0)
    finally:
        for pid in pids:  # only if the test failed
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if supervisor.returncode is None:
            supervisor.kill()
            await supervisor.wait()
        assert supervisor.stdout is not None
        await supervisor.stdout.read()
