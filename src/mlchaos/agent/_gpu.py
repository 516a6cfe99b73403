"""GPU memory pressure: device memory on a GPU taken until only a little stays free.

Another job (or a leak) taking the device memory a model server needs is one of the commonest GPU
failures. The ``gpu_memory`` fault reproduces it with a *holder*: a process of its own per fault
(``python -c "from mlchaos.agent._gpu import hold; hold()" LEAVE_FREE``) that sees only the
chosen GPU (``CUDA_VISIBLE_DEVICES=<its UUID>``), makes a CUDA context through the driver API
(:mod:`mlchaos._cuda`: ``ctypes`` on ``libcuda.so.1``, no toolkit, no framework) and allocates
device memory (``cuMemAlloc``) in shrinking steps until at most ``LEAVE_FREE`` bytes stay free.
It prints one JSON line (``{"held", "free", "total"}``, or ``{"error"}``) and waits for
end-of-file on stdin.

Process death frees device memory — the driver reclaims a dead process's allocations — which is
the fault's natural lease: the agent ends the holder on removal and when the lease lapses, and
the holder exits by itself when the agent dies (its stdin is the agent's pipe, and it asks the
kernel for SIGKILL when its parent dies).

NVML (``nvidia-ml-py``, NVIDIA's own binding) reads what the driver shows: which GPU a process
uses, the device's free memory, and that the holder is among its processes (the pressure is in
place) or gone. The agent imports NVML only for this fault.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Gpu",
    "Pressure",
    "choose",
    "device",
    "gpus_of",
    "hold",
    "in_place",
    "occupy",
    "release",
    "unsupported",
]

_MIB = 1 << 20
_GRANULE = 2 * _MIB  # the driver's allocation granularity
_START_TIMEOUT_S = 120.0  # a first CUDA context on a big GPU takes seconds


@dataclass(frozen=True, slots=True)
class Gpu:
    """A GPU as NVML numbers it, with its UUID (what CUDA_VISIBLE_DEVICES takes)."""

    index: int
    uuid: str
    total: int


@dataclass(eq=False)
class Pressure:
    """Device memory held on one GPU by a holder process."""

    gpu: Gpu
    leave_free: int
    holder: subprocess.Popen[bytes] = field(repr=False)
    held: int = 0
    free: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "gpu": self.gpu.index,
            "uuid": self.gpu.uuid,
            "held": self.held,
            "free": self.free,
            "holder": self.holder.pid,
        }


def _nvml() -> Any:
    """NVML, initialised; ImportError or pynvml.NVMLError when it cannot be."""
    import pynvml  # noqa: PLC0415

    pynvml.nvmlInit()
    return pynvml


def unsupported() -> str | None:
    """Why this host cannot take GPU memory (None: it can)."""
    try:
        nvml = _nvml()
    except ImportError:
        return (
            "the gpu_memory fault needs nvidia-ml-py on the agent's host: "
            "pip install 'mlchaos[gpu]'"
        )
    except Exception as exc:  # noqa: BLE001 - pynvml.NVMLError and its many subclasses
        return f"no NVIDIA driver on the agent's host (NVML: {exc})"
    if nvml.nvmlDeviceGetCount() == 0:
        return "the agent's host has no GPU (NVML finds no device)"
    import ctypes  # noqa: PLC0415

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no CUDA driver on the agent's host (libcuda.so.1 not found)"
    return None


def gpus() -> list[Gpu]:
    nvml = _nvml()
    found = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        uuid = nvml.nvmlDeviceGetUUID(handle)
        total = int(nvml.nvmlDeviceGetMemoryInfo(handle).total)
        found.append(Gpu(index, uuid.decode() if isinstance(uuid, bytes) else str(uuid), total))
    return found


def gpus_of(pid: int) -> list[Gpu]:
    """The GPUs on which NVML lists ``pid`` among the processes using the device."""
    return [gpu for gpu in gpus() if pid in _pids_on(gpu.index)]


def device(index: int) -> Gpu:
    """The GPU of that NVML index; ValueError when there is none."""
    found = gpus()
    if not 0 <= index < len(found):
        raise ValueError(f"no GPU {index} on the agent's host (it has {len(found)})")
    return found[index]


def _pids_on(index: int) -> set[int]:
    nvml = _nvml()
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    listed = [
        *nvml.nvmlDeviceGetComputeRunningProcesses(handle),
        *nvml.nvmlDeviceGetGraphicsRunningProcesses(handle),
    ]
    return {int(p.pid) for p in listed}


def choose(pid: int, index: int | None) -> Gpu:
    """The GPU to take memory on: ``index`` when given, else the one ``pid`` uses; ValueError
    when there is no such GPU, or the process uses none or several."""
    if index is not None:
        return device(index)
    used = gpus_of(pid)
    if len(used) != 1:
        which = ", ".join(str(g.index) for g in used) or "none NVML can see"
        raise ValueError(f"pid {pid} uses GPUs {which}: say which with 'device'")
    return used[0]


def occupy(gpu: Gpu, leave_free: int) -> Pressure:
    """Start a holder that takes the GPU's memory down to ``leave_free`` bytes free; OSError
    when it cannot (its message says why)."""
    import os  # noqa: PLC0415

    holder = subprocess.Popen(  # noqa: S603 - this Python, our module, a number
        [sys.executable, "-c", "from mlchaos.agent._gpu import hold; hold()", str(leave_free)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": gpu.uuid, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"},
        start_new_session=True,  # a signal to the agent's group does not reach it
    )
    pressure = Pressure(gpu, leave_free, holder)
    try:
        assert holder.stdout is not None
        line = _first_line(holder.stdout, _START_TIMEOUT_S)
        answer = json.loads(line) if line else {"error": f"exited with {holder.poll()}"}
    except (OSError, ValueError, TimeoutError) as exc:
        answer = {"error": str(exc) or type(exc).__name__}
    if "error" in answer:
        release(pressure)
        raise OSError(f"cannot take memory on GPU {gpu.index}: {answer['error']}")
    pressure.held, pressure.free = int(answer["held"]), int(answer["free"])
    return pressure


def in_place(pressure: Pressure) -> bool:
    """The holder runs and NVML lists it among the GPU's processes."""
    if pressure.holder.poll() is not None:
        return False
    try:
        return pressure.holder.pid in _pids_on(pressure.gpu.index)
    except Exception:  # noqa: BLE001 - NVML gone: nothing shows it in place
        return False


def release(pressure: Pressure) -> bool:
    """End the holder (its memory goes with it); True when it was still holding."""
    holder = pressure.holder
    was_running = holder.poll() is None
    if holder.stdin is not None:
        with contextlib.suppress(OSError):
            holder.stdin.close()
    try:
        holder.wait(timeout=5)
    except subprocess.TimeoutExpired:
        holder.kill()
        holder.wait()
    if holder.stdout is not None:
        holder.stdout.close()
    return was_running


def _first_line(stream: Any, timeout: float) -> str:
    import selectors  # noqa: PLC0415

    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"the holder said nothing within {timeout:g}s")
    return str(stream.readline().decode())


def hold() -> None:
    """The holder (see the module): take device memory down to ``argv[1]`` bytes free."""
    import ctypes  # noqa: PLC0415
    import signal  # noqa: PLC0415

    from mlchaos._cuda import Cuda, CudaError  # noqa: PLC0415

    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: go with the agent
    leave_free = int(sys.argv[1])
    try:
        cuda = Cuda()
        free, total = cuda.memory()
        held, step, blocks = 0, 1 << 30, []
        while step >= _GRANULE and free - leave_free >= _GRANULE:
            want = min(step, (free - leave_free) // _GRANULE * _GRANULE)
            try:
                blocks.append(cuda.alloc(want))
                held += want
            except CudaError:  # no block this big (fragmentation, other processes): smaller
                step //= 2
            free, total = cuda.memory()
    except CudaError as exc:
        _say({"error": str(exc)})
        return
    _say({"held": held, "free": free, "total": total})
    sys.stdin.buffer.read()  # until the agent closes the pipe, or dies
    # exiting frees every block and the context


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()
