"""The agent's guardian: every process the agent paused is resumed when the agent dies.

A pause must not outlive the agent that holds its lease. The agent cannot promise that itself
(a SIGKILL or the OOM killer gives it no last word), so at start it spawns this small process,
in a session of its own, and tells it over a pipe each process it holds stopped (``hold PID
START_TIME``) and each it let go (``release PID``). When the agent exits, however it exits,
the kernel closes the pipe; the guardian reads end-of-file, sends SIGCONT to every process it
still holds (if it is still the same process: same start time) and exits.

Run as ``python -m mlchaos.agent._guardian``; it needs nothing but psutil.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys

__all__ = ["Guardian", "main"]


def main() -> None:
    """Read hold/release lines until end-of-file, then resume what is still held."""
    import signal  # noqa: PLC0415

    import psutil  # noqa: PLC0415

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only end-of-file ends it
    held: dict[int, float] = {}
    stdin = sys.stdin.buffer
    while line := stdin.readline():
        parts = line.split()
        with contextlib.suppress(ValueError):
            if len(parts) == 3 and parts[0] == b"hold":
                held[int(parts[1])] = float(parts[2])
            elif len(parts) == 2 and parts[0] == b"release":
                held.pop(int(parts[1]), None)
    for pid, created in held.items():
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if proc.create_time() == created:
                proc.resume()


class Guardian:
    """The agent's side: spawns the guardian and keeps it told (restarting it if it died)."""

    def __init__(self) -> None:
        self._held: dict[int, float] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._spawn()

    def hold(self, pid: int, created: float) -> None:
        self._held[pid] = created
        self._send(f"hold {pid} {created!r}\n")

    def release(self, pid: int) -> None:
        self._held.pop(pid, None)
        self._send(f"release {pid}\n")

    def close(self) -> None:
        """End the guardian (it resumes whatever is still held: nothing, after a clean stop)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _spawn(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "mlchaos.agent._guardian"],
            stdin=subprocess.PIPE,
            start_new_session=True,  # a signal to the agent's group does not reach it
        )

    def _send(self, line: str) -> None:
        for _ in range(2):
            proc = self._proc
            if proc is not None and proc.stdin is not None and proc.poll() is None:
                try:
                    proc.stdin.write(line.encode())
                    proc.stdin.flush()
                    return
                except OSError:
                    pass
            self._spawn()  # it died: a new one, told everything still held
            line = "".join(f"hold {p} {c!r}\n" for p, c in self._held.items()) or line


if __name__ == "__main__":
    main()
