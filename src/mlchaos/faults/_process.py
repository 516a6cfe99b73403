"""Process faults: kill a process found by its pid file, as a crash would.

A kill cannot be leased or undone; the experiment's rollback actions restart what was killed.
The injector refuses, before anything is injected, a pid file that is missing or unreadable, a
process that does not exist or may not be signalled, and the runner itself or its parent.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from mlchaos.errors import PreflightError, RunError

__all__ = ["KillInjector"]


class KillInjector:
    """Send ``sig`` to the process whose pid is in ``pidfile`` (read again at injection)."""

    def __init__(self, pidfile: Path, sig: signal.Signals) -> None:
        self.pidfile = pidfile
        self.signal = sig
        self.killed_pid: int | None = None

    @property
    def label(self) -> str:
        return f"{self.signal.name} to the process in {self.pidfile}"

    def _target(self, error: type[RunError]) -> int:
        try:
            text = self.pidfile.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise error(f"cannot read pid file {self.pidfile}: {exc}") from None
        if not text.isdigit() or int(text) <= 1:
            raise error(f"pid file {self.pidfile} does not hold a process id: {text[:40]!r}")
        pid = int(text)
        if pid in (os.getpid(), os.getppid()):
            raise error(f"pid file {self.pidfile} names mlchaos itself (pid {pid}); refusing")
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise error(f"no process {pid} (from {self.pidfile}) is running") from None
        except PermissionError:
            raise error(f"not allowed to signal process {pid} (from {self.pidfile})") from None
        return pid

    async def check(self) -> None:
        """The pid file names a live process mlchaos may signal (signal 0: nothing is sent)."""
        self._target(PreflightError)

    async def inject(self) -> None:
        pid = self._target(RunError)
        try:
            os.kill(pid, self.signal)
        except ProcessLookupError:
            raise RunError(f"process {pid} exited before it could be killed") from None
        self.killed_pid = pid

    async def renew(self) -> None:
        """Nothing to renew: the kill already happened."""

    async def remove(self) -> None:
        """Nothing to remove: a restart is a rollback action."""

    async def verify_removed(self) -> bool:
        return True
