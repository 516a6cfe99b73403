"""Confining a process in a cgroup of mlchaos's making: a CPU quota, a memory limit; and undoing it.

The process is moved into a new cgroup ``mlchaos-{name}`` and moved back on release, which also
moves back any child it forked meanwhile and removes the cgroup. Both hierarchies are supported:

* **cgroup v1** (a directory per controller, ``/sys/fs/cgroup/cpu``, ``/sys/fs/cgroup/memory``):
  the new cgroup is a child of the process's own cgroup in that controller's hierarchy, so every
  limit above it still applies. CPU: ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``; memory:
  ``memory.limit_in_bytes``.
* **cgroup v2** (one hierarchy, ``cgroup.controllers`` at the root): the new cgroup is a sibling
  of the process's own (a cgroup with processes cannot have children with controllers), with
  ``cpu.max`` and ``memory.max``. Limits of the process's own cgroup do not apply meanwhile.

Memory a process already holds stays charged where it was (charges do not move with it): the
limit caps what it allocates *while confined*; past it, allocations fail and the kernel's OOM
killer acts within the cgroup. Standard library only: the agent's guardian imports it too.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CGROUP_ROOT", "Confinement", "Limits", "confine", "in_place", "release", "unsupported"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
_PERIOD_US = 100_000
_MIN_QUOTA_US = 1_000  # the kernel's smallest CFS quota


@dataclass(frozen=True, slots=True)
class Limits:
    """What a confinement limits: CPU in cores (0.1 = 10% of one core), memory in bytes."""

    cpu: float | None = None
    memory: int | None = None

    def controllers(self) -> list[str]:
        return [c for c, v in (("cpu", self.cpu), ("memory", self.memory)) if v is not None]


@dataclass(frozen=True, slots=True)
class Confinement:
    """A process moved into cgroups of ours: per hierarchy, (its own cgroup, ours)."""

    pid: int
    moves: tuple[tuple[str, str], ...]

    def to_json(self) -> str:
        return json.dumps({"pid": self.pid, "moves": [list(m) for m in self.moves]})

    @classmethod
    def from_json(cls, text: str) -> Confinement:
        data = json.loads(text)
        return cls(int(data["pid"]), tuple((str(a), str(b)) for a, b in data["moves"]))


def unsupported(limits: Limits, root: Path = CGROUP_ROOT) -> str | None:
    """Why this host cannot confine with ``limits`` (None: it can)."""
    if os.geteuid() != 0 and root == CGROUP_ROOT:
        return "cgroup faults need root (the agent runs as an unprivileged user)"
    if (root / "cgroup.controllers").exists():
        available = (root / "cgroup.controllers").read_text().split()
        missing = [c for c in limits.controllers() if c not in available]
        return f"cgroup v2 without the {', '.join(missing)} controller" if missing else None
    missing = [c for c in limits.controllers() if not (root / c / "cgroup.procs").exists()]
    if missing:
        return f"no cgroup {', '.join(missing)} controller mounted under {root}"
    return None


def confine(pid: int, name: str, limits: Limits, root: Path = CGROUP_ROOT) -> Confinement:
    """Move ``pid`` into a new cgroup ``mlchaos-{name}`` with ``limits``; OSError (with
    nothing left behind) when the kernel refuses."""
    why = unsupported(limits, root)
    if why is not None:
        raise OSError(errno.ENOTSUP, why)
    own = _own_cgroups(pid)
    moves: list[tuple[str, str]] = []
    try:
        if (root / "cgroup.controllers").exists():
            current = root / own[""].lstrip("/")
            ours = (current.parent if current != root else root) / f"mlchaos-{name}"
            _make(ours)
            moves.append((str(current), str(ours)))
            if limits.cpu is not None:
                _write(ours / "cpu.max", f"{_quota(limits.cpu)} {_PERIOD_US}")
            if limits.memory is not None:
                _write(ours / "memory.max", str(limits.memory))
            _write(ours / "cgroup.procs", str(pid))
        else:
            for controller in limits.controllers():
                current = root / controller / own[controller].lstrip("/")
                ours = current / f"mlchaos-{name}"
                _make(ours)
                moves.append((str(current), str(ours)))
                if controller == "cpu":
                    assert limits.cpu is not None
                    _write(ours / "cpu.cfs_period_us", str(_PERIOD_US))
                    _write(ours / "cpu.cfs_quota_us", str(_quota(limits.cpu)))
                else:
                    _write(ours / "memory.limit_in_bytes", str(limits.memory))
                _write(ours / "cgroup.procs", str(pid))
    except BaseException:
        release(Confinement(pid, tuple(moves)))
        raise
    return Confinement(pid, tuple(moves))


def release(confinement: Confinement) -> bool:
    """Move every process in our cgroups back to where the target came from and remove our
    cgroups; True when the target itself was there to move back. Idempotent."""
    moved = False
    for original, ours in confinement.moves:
        ours_dir = Path(ours)
        if not ours_dir.exists():
            continue
        for pid in _procs(ours_dir):
            with contextlib.suppress(ProcessLookupError, FileNotFoundError):
                _write(Path(original) / "cgroup.procs", str(pid))
                moved |= pid == confinement.pid
        for _ in range(50):  # an emptied cgroup can be busy for a moment
            try:
                ours_dir.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                time.sleep(0.01)
    return moved


def in_place(confinement: Confinement) -> dict[str, Any]:
    """What the kernel shows: the target in each of our cgroups, and the limits set there."""
    shown: dict[str, Any] = {"confined": bool(confinement.moves)}
    for _, ours in confinement.moves:
        ours_dir = Path(ours)
        shown["confined"] &= confinement.pid in _procs(ours_dir)
        for name in ("cpu.max", "cpu.cfs_quota_us", "memory.max", "memory.limit_in_bytes"):
            with contextlib.suppress(OSError):
                shown[name] = (ours_dir / name).read_text().strip()
    return shown


def _own_cgroups(pid: int) -> dict[str, str]:
    """The process's cgroup per controller (v1) and ``""`` → its v2 cgroup."""
    own: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            own[controller] = path
    return own


def _quota(cores: float) -> int:
    return max(_MIN_QUOTA_US, round(cores * _PERIOD_US))


def _make(path: Path) -> None:
    with contextlib.suppress(FileExistsError):
        path.mkdir()


def _write(path: Path, value: str) -> None:
    with path.open("w") as f:
        f.write(value)


def _procs(path: Path) -> list[int]:
    try:
        return [int(x) for x in (path / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []
