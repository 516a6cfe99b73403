"""Where running experiments announce themselves, so ``mlchaos halt`` can stop them all.

A private state directory (``$MLCHAOS_STATE_DIR``, default ``$XDG_RUNTIME_DIR/mlchaos/state``
or ``/tmp/mlchaos-UID/state``, mode 0700) holds one JSON file per running experiment — its pid,
the targets its faults act on and the control APIs of the proxies it uses — and, while mlchaos
is disabled, a ``disabled`` file with the reason. A runner refuses to start while that file
exists, or while another running experiment holds one of its targets (checked and registered
under a lock, so two runners starting together cannot both pass). ``rehearsals/`` keeps the
latest rehearsal result of each spec, by the spec's hash.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from mlchaos.errors import RunError

__all__ = ["Registry", "running"]


class Registry:
    """The running experiments and the disable switch, in one directory."""

    def __init__(self, root: Path | None = None) -> None:
        if root is None:
            from mlchaos.control import default_token_dir  # noqa: PLC0415

            env = os.environ.get("MLCHAOS_STATE_DIR")
            root = Path(env) if env else default_token_dir() / "state"
        self.root = root

    def _dir(self) -> Path:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.root

    # -- the disable switch ----------------------------------------------------------------------
    def disabled(self) -> str | None:
        """The reason mlchaos is disabled, or None when runs are allowed."""
        try:
            return (self.root / "disabled").read_text(encoding="utf-8").strip() or "no reason given"
        except FileNotFoundError:
            return None

    def disable(self, reason: str) -> None:
        (self._dir() / "disabled").write_text(reason.strip() + "\n", encoding="utf-8")

    def enable(self) -> bool:
        """Clear the switch; True when it was set."""
        try:
            (self.root / "disabled").unlink()
        except FileNotFoundError:
            return False
        return True

    # -- running experiments ---------------------------------------------------------------------
    def register(self, run_id: str, title: str, targets: list[str] | None = None) -> None:
        """Register this process's run; RunError when a running experiment holds a target."""
        import fcntl  # noqa: PLC0415 - POSIX only, like the rest of the state directory

        wanted = set(targets or ())
        with (self._dir() / "lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for other in self.runs():
                held = wanted & set(other.get("targets", ()))
                if held and running(other):
                    raise RunError(
                        f"another experiment is running against {', '.join(sorted(held))}: "
                        f"run {other.get('run_id')} ('{other.get('title')}', pid "
                        f"{other.get('pid')}); one experiment at a time per target"
                    )
            self._write(
                run_id,
                {
                    "run_id": run_id,
                    "pid": os.getpid(),
                    "created": _created(os.getpid()),
                    "title": title,
                    "started": time.time(),
                    "targets": sorted(wanted),
                    "proxies": [],
                    "agents": [],
                },
            )

    def add_proxy(self, run_id: str, control: str, token: str) -> None:
        self._add(run_id, "proxies", {"control": control, "token": token})

    def add_agent(self, run_id: str, control: str, token: str) -> None:
        self._add(run_id, "agents", {"control": control, "token": token})

    def _add(self, run_id: str, section: str, item: dict[str, str]) -> None:
        entry = self._read(self.root / f"{run_id}.json")
        if entry is not None:
            entry.setdefault(section, []).append(item)
            self._write(run_id, entry)

    def unregister(self, run_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / f"{run_id}.json").unlink()

    def runs(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        found = (self._read(p) for p in sorted(self.root.glob("*.json")))
        return [e for e in found if e is not None]

    # -- rehearsals ------------------------------------------------------------------------------
    def record_rehearsal(self, spec_hash: str, entry: dict[str, Any]) -> None:
        (self._dir() / "rehearsals").mkdir(mode=0o700, exist_ok=True)
        self._write(f"rehearsals/{spec_hash}", entry)

    def rehearsal(self, spec_hash: str) -> dict[str, Any] | None:
        """The latest rehearsal of the spec with this hash, or None."""
        return self._read(self.root / "rehearsals" / f"{spec_hash}.json")

    def _write(self, run_id: str, entry: dict[str, Any]) -> None:
        path = self._dir() / f"{run_id}.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds tokens
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(entry, f)
        tmp.replace(path)

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        """A JSON object from ``path``; None when it is missing or not one."""
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) else None


def running(entry: dict[str, Any]) -> bool:
    """Whether the runner of a registry entry still runs: its pid exists and, where the entry
    recorded it, the process has the same start time (a reused pid is another process)."""
    pid = entry.get("pid")
    if not isinstance(pid, int) or pid <= 1:
        return False
    created = _created(pid)
    if created is None:
        return False
    recorded = entry.get("created")
    return recorded is None or abs(float(recorded) - created) < 1e-3


def _created(pid: int) -> float | None:
    """The start time of process ``pid``; None when there is none."""
    import psutil  # noqa: PLC0415

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None
