"""Shared fixtures: free loopback ports and mlchaos processes that are always cleaned up."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Property tests judge what they compute, never how fast: Hypothesis's default 200 ms deadline
# fails a test whose example met a scheduling stall on the 2 CI cores ("Unreliable test timings").
settings.register_profile("mlchaos", deadline=None)
settings.load_profile("mlchaos")

MLCHAOS = [sys.executable, "-m", "mlchaos"]

pytest_plugins = ("pytester",)  # the pytest plugin's own tests run pytest on test files
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


Spawn = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start mlchaos subprocesses; every one is terminated (then killed) after the test."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, **kwargs: object) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [*MLCHAOS, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            **kwargs,  # type: ignore[call-overload]
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        stop_process(proc)
        if proc.stdout:
            proc.stdout.close()


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL after 10 s: a child of a test never outlives it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def first_line(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    """The first line a child prints (its ready line); TimeoutError saying so otherwise."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"{proc.args} printed nothing within {timeout}s")
    return proc.stdout.readline()


@pytest.fixture
def needs_cgroups() -> None:
    """Skip, naming why, where the agent cannot make cgroups with a CPU quota and a memory
    limit (not root, no controller); fail instead when ``MLCHAOS_REQUIRE_CGROUPS=1`` (CI)."""
    from mlchaos.agent._cgroup import Limits, unsupported

    why = unsupported(Limits(cpu=0.5, memory=64 * 2**20))
    if why is None:
        return
    if os.environ.get("MLCHAOS_REQUIRE_CGROUPS") == "1":
        pytest.fail(f"MLCHAOS_REQUIRE_CGROUPS=1 but {why}")
    pytest.skip(why)


@pytest.fixture
def needs_netns() -> None:
    """Skip, naming why, where network namespaces cannot be made and cut apart (not root, no
    ``ip`` or ``nsenter``); fail instead when ``MLCHAOS_REQUIRE_NETNS=1`` (CI)."""
    from mlchaos.agent._netns import unsupported
    from mlchaos.demo._isolation import isolation_unsupported

    why = isolation_unsupported() or unsupported()
    if why is None:
        return
    if os.environ.get("MLCHAOS_REQUIRE_NETNS") == "1":
        pytest.fail(f"MLCHAOS_REQUIRE_NETNS=1 but {why}")
    pytest.skip(why)


@dataclass(frozen=True)
class AgentProcess:
    """``mlchaos agent serve`` as its own process: kill it to see what its guardian undoes."""

    proc: subprocess.Popen[str]
    control: str
    token: str

    def kill(self) -> None:
        """SIGKILL, as the OOM killer would: no last word."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def agent_process(tmp_path: Path) -> Iterator[AgentProcess]:
    token_file = tmp_path / "agent.token"
    proc = subprocess.Popen(
        [*MLCHAOS, "agent", "serve", "--token-file", str(token_file)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        control = json.loads(first_line(proc))["control"]
        yield AgentProcess(proc, control, token_file.read_text().strip())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.fixture
def burner() -> Iterator[subprocess.Popen[bytes]]:
    """A process that uses all the CPU it is given."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def upstream(spawn: Spawn) -> int:
    """The bundled toy model server as its own process, on a port the system chose (read back
    from its ready line: no window for another process to take it); returns the port."""
    line = first_line(spawn("upstream", "serve", "--port", "0"))
    found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    assert found is not None, line
    return int(found[1])


@dataclass(frozen=True)
class ProxyProcess:
    """A proxy started as its own process (``mlchaos proxy serve``) on free loopback ports."""

    listen: int
    control: int
    token_file: Path

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()


def start_proxy(
    tmp_path: Path, spawn: Spawn, upstream: int, *, name: str = "proxy"
) -> ProxyProcess:
    """``mlchaos proxy serve`` in front of ``upstream`` on ports the system chose (read back
    from its ready line); returns once both sockets listen."""
    token_file = tmp_path / f"{name}.token"
    config = tmp_path / f"{name}.yaml"
    config.write_text(
        f"name: {name}\nprotocol: http\nlisten: 127.0.0.1:0\n"
        f"upstream: 127.0.0.1:{upstream}\n"
        f"control: {{listen: 127.0.0.1:0, token_file: {token_file}}}\n"
    )
    ready = json.loads(first_line(spawn("proxy", "serve", "--config", str(config), "--announce")))
    control = int(ready["control"].rsplit(":", 1)[1])
    return ProxyProcess(int(ready["port"]), control, token_file)


# Whole services or experiments run end to end through the CLI: minutes in all.
_SLOW_PATHS = (
    "tests/e2e/",
    "tests/demo/test_demo.py",
    "tests/demo/test_redis.py",
    "tests/feast/",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow tests: those under ``_SLOW_PATHS`` and those that use the report tests'
    real runs; ``pytest -m "not slow"`` is the quick loop."""
    for item in items:
        where = item.path.relative_to(ROOT).as_posix()
        fixtures = getattr(item, "fixturenames", ())
        if where.startswith(_SLOW_PATHS) or "real_runs" in fixtures:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def private_state_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test has its own run registry and disable switch (``mlchaos halt`` state)."""
    monkeypatch.setenv("MLCHAOS_STATE_DIR", str(tmp_path_factory.mktemp("state")))
