"""The few CUDA driver API calls mlchaos makes, through ``ctypes`` on ``libcuda.so.1``.

No CUDA toolkit and no framework: the driver library ships with NVIDIA's driver. Used by the
agent's GPU memory holder (take device memory) and by the demo replica's GPU workspace (allocate
and free per inference). Every call answers the driver's status code; 0 is success, 2 is
``CUDA_ERROR_OUT_OF_MEMORY``.
"""

from __future__ import annotations

import ctypes

__all__ = ["OUT_OF_MEMORY", "Cuda", "CudaError"]

OUT_OF_MEMORY = 2


class CudaError(OSError):
    """A driver call failed (or the driver is missing): which call, and its status code."""


class Cuda:
    """A context on device 0 of those this process sees (``CUDA_VISIBLE_DEVICES``)."""

    def __init__(self) -> None:
        try:
            self._lib = ctypes.CDLL("libcuda.so.1")
        except OSError:
            raise CudaError("no CUDA driver (libcuda.so.1 not found)") from None
        self._context = ctypes.c_void_p()
        device = ctypes.c_int()
        self._check("cuInit", 0)
        self._check("cuDeviceGet", ctypes.byref(device), 0)
        self._check("cuCtxCreate_v2", ctypes.byref(self._context), 0, device)

    def memory(self) -> tuple[int, int]:
        """(free, total) bytes of the device, as the driver sees them now."""
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        self._check("cuMemGetInfo_v2", ctypes.byref(free), ctypes.byref(total))
        return free.value, total.value

    def alloc(self, size: int) -> int:
        """A device pointer to ``size`` bytes; CudaError (status 2 when out of memory)."""
        pointer = ctypes.c_uint64()
        self._check("cuMemAlloc_v2", ctypes.byref(pointer), ctypes.c_size_t(size))
        return pointer.value

    def touch(self, pointer: int, size: int) -> None:
        """Write every byte (as a model's first kernel would)."""
        self._check("cuMemsetD8_v2", ctypes.c_uint64(pointer), ctypes.c_ubyte(1), size)

    def free(self, pointer: int) -> None:
        self._check("cuMemFree_v2", ctypes.c_uint64(pointer))

    def current(self) -> None:
        """Make this context current on the calling thread."""
        self._check("cuCtxSetCurrent", self._context)

    def _check(self, call: str, *args: object) -> None:
        code = int(getattr(self._lib, call)(*args))
        if code != 0:
            error = CudaError(f"{call} failed with CUDA error {code}")
            error.errno = code
            raise error
