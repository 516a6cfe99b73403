"""GPU memory faults: device memory on a GPU taken by the agent's holder until only a little stays
free, so a model server on that GPU cannot allocate; and given back.

Where the host has no GPU or no driver (this project's CI), the fault is refused before anything
is done, with one clear message — that runs everywhere without a GPU. The tests that take real
device memory need an NVIDIA GPU, its driver and nvidia-ml-py; elsewhere they skip, naming why.
A model-server stand-in makes a CUDA context and asks for device memory on request; NVML shows
what the driver sees.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlchaos.agent import AgentClient, AgentServer
from mlchaos.agent._gpu import gpus_of, unsupported
from mlchaos.cli import main
from mlchaos.errors import EXIT_CANNOT_RUN, ControlAPIError, PreflightError
from mlchaos.faults._process import AgentInjector, GpuTake
from mlchaos.process import ProcessSelector
from mlchaos.units import Duration
from tests.conftest import ROOT, AgentProcess

MIB = 2**20
WHY_NO_GPU = unsupported()
needs_gpu = pytest.mark.skipif(WHY_NO_GPU is not None, reason=f"needs a GPU: {WHY_NO_GPU}")

# A model server's stand-in: a CUDA context on the GPU, then one allocation per line of stdin
# (MiB), each answered "ok" (held until the next line) or the CUDA error.
SERVER = """
import sys
from mlchaos._cuda import Cuda, CudaError
cuda = Cuda()
print("ready", flush=True)
held = None
for line in sys.stdin:
    if held is not None:
        cuda.free(held)
        held = None
    try:
        held = cuda.alloc(int(line) * 2**20)
        print("ok", flush=True)
    except CudaError as exc:
        print(f"error {exc.errno}", flush=True)
"""


@pytest.fixture
def process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], ProcessSelector]]:
    """A process in the host's namespace that mlchaos may act on (no GPU needed)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, text=True
    )
    pidfile = tmp_path / "server.pid"
    pidfile.write_text(str(proc.pid))
    yield proc, ProcessSelector(pidfile=str(pidfile))
    proc.kill()
    proc.wait()
    assert proc.stdin is not None
    proc.stdin.close()


@pytest.fixture
def gpu_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], ProcessSelector]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    pidfile = tmp_path / "gpu-server.pid"
    pidfile.write_text(str(proc.pid))
    yield proc, ProcessSelector(pidfile=str(pidfile))
    proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        assert pipe is not None
        pipe.close()


def ask(proc: subprocess.Popen[str], mib: int) -> str:
    """The stand-in allocates ``mib`` MiB: "ok", or "error CODE" (2: out of memory)."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"{mib}\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def free_mib(pid: int) -> float:
    import pynvml

    (gpu,) = gpus_of(pid)
    handle = pynvml.nvmlDeviceGetHandleByIndex(gpu.index)
    return int(pynvml.nvmlDeviceGetMemoryInfo(handle).free) / MIB


@pytest.mark.skipif(WHY_NO_GPU is None, reason="this host has a GPU: the fault is not refused")
@pytest.mark.asyncio
async def test_without_a_gpu_or_driver_the_fault_is_refused_before_anything_is_done(
    tmp_path: Path, process: tuple[subprocess.Popen[str], ProcessSelector]
) -> None:
    _, selector = process
    assert WHY_NO_GPU is not None
    async with (
        AgentServer(token_file=str(tmp_path / "agent.token")) as agent,
        AgentClient(agent.url, agent.token) as client,
    ):
        with pytest.raises(ControlAPIError, match="409") as refused:
            await client.take_gpu_memory("g", selector, Duration(5), leave_free=256 * MIB)
        assert WHY_NO_GPU in str(refused.value)
        injector = AgentInjector(
            client, selector, lease=Duration(5), fault_id="g", agent="a", gpu=GpuTake(None, MIB)
        )
        with pytest.raises(PreflightError, match=r"agent 'a' cannot act: .*409") as why:
            await injector.check()
        assert WHY_NO_GPU in str(why.value)
        assert await client.paused() == []


@pytest.mark.skipif(WHY_NO_GPU is None, reason="this host has a GPU: the fault is not refused")
def test_a_run_with_a_gpu_fault_on_a_host_without_one_stops_at_preflight(
    tmp_path: Path,
    process: tuple[subprocess.Popen[str], ProcessSelector],
    capsys: pytest.CaptureFixture[str],
    upstream: int,
    agent_process: AgentProcess,
) -> None:
    control = agent_process.control
    _, selector = process
    spec = tmp_path / "gpu.yaml"
    spec.write_text(
        f"""\
title: GPU memory taken
agents: [{{name: a, connect: {{url: "{control}", token_file: "{tmp_path / "agent.token"}"}}}}]
traffic:
  target: http://127.0.0.1:{upstream}
  dataset: {ROOT / "examples" / "data" / "toy.csv"}
  rate: 10/s
  duration: 3s
  request: {{protocol: v2, model: toy}}
  key: entity_id
  label: label
faults:
  - {{type: gpu_memory, target: a, process: {{pidfile: "{selector.pidfile}"}}, leave_free: 256MiB}}
hypothesis:
  - {{metric: error_rate, arm: control, max: 5%}}
"""
    )
    assert main(["validate", str(spec)]) == 0
    assert "(gpu_memory) takes a shared GPU's memory" in capsys.readouterr().out
    code = main(["run", str(spec), "--out", str(tmp_path / "out"), "--quiet"])
    said = capsys.readouterr()
    out = " ".join((said.out + said.err).split())  # the console wraps long lines
    assert code == EXIT_CANNOT_RUN, out
    assert "agent 'a' cannot act" in out and str(WHY_NO_GPU) in out
    assert "Traceback" not in out


@needs_gpu
@pytest.mark.asyncio
async def test_taken_gpu_memory_fails_the_servers_allocations_until_given_back(
    tmp_path: Path, gpu_server: tuple[subprocess.Popen[str], ProcessSelector]
) -> None:
    proc, selector = gpu_server
    before = free_mib(proc.pid)
    assert ask(proc, 1024) == "ok"
    async with (
        AgentServer(token_file=str(tmp_path / "agent.token")) as agent,
        AgentClient(agent.url, agent.token) as client,
    ):
        answer = await client.take_gpu_memory("g", selector, Duration(30), leave_free=256 * MIB)
        assert answer["confirmed"] is True and answer["action"] == "gpu_memory"
        assert free_mib(proc.pid) <= 256 + 2  # the driver shows it taken
        assert ask(proc, 1024) == "error 2"  # CUDA_ERROR_OUT_OF_MEMORY
        assert ask(proc, 64) == "ok"  # what was left free is still there
        await client.remove("g")
        assert free_mib(proc.pid) > before - 1024 - 512  # given back (the server holds 64 MiB)
        assert ask(proc, 1024) == "ok"


@needs_gpu
@pytest.mark.asyncio
async def test_gpu_memory_whose_lease_lapses_is_given_back(
    tmp_path: Path, gpu_server: tuple[subprocess.Popen[str], ProcessSelector]
) -> None:
    proc, selector = gpu_server
    async with (
        AgentServer(token_file=str(tmp_path / "agent.token")) as agent,
        AgentClient(agent.url, agent.token) as client,
    ):
        await client.take_gpu_memory("g", selector, Duration(1.0), leave_free_share=0.01)
        assert ask(proc, 4096) == "error 2"
        await asyncio.sleep(1.5)  # nobody renews: a runner killed with SIGKILL
        assert await client.paused() == []
        assert ask(proc, 4096) == "ok"


@needs_gpu
def test_gpu_memory_is_given_back_when_the_agent_is_killed(
    gpu_server: tuple[subprocess.Popen[str], ProcessSelector], agent_process: AgentProcess
) -> None:
    proc, selector = gpu_server

    async def take() -> None:
        async with AgentClient(agent_process.control, agent_process.token) as client:
            await client.take_gpu_memory("g", selector, Duration(60), leave_free=256 * MIB)

    asyncio.run(take())
    assert ask(proc, 1024) == "error 2"
    agent_process.kill()
    t0 = time.monotonic()
    while ask(proc, 1024) != "ok":  # the holder went with the agent, and its memory
        assert time.monotonic() - t0 < 10, "GPU memory still taken after the agent died"
        time.sleep(0.1)
