"""Which process a process fault acts on: by pid file, by command-line pattern, or by the port
it listens on. Resolution uses psutil and refuses anything but exactly one safe process — or,
with ``pick``, one of the N that match, or a share of them, chosen at random.

Never a target, whatever the selector says (:func:`protected`): PID 1, the resolving process and
every ancestor of it, any mlchaos runner or agent (``mlchaos run``, ``rehearse``, ``halt``,
``agent``), and processes of another user. A pattern matching more than :data:`MAX_MATCHING`
processes is too broad to trust. A pid file must be a small regular file written after the
process it names started (else the pid was reused).
"""

from __future__ import annotations

import math
import os
import random
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlchaos.errors import RunError
from mlchaos.units import Share

if TYPE_CHECKING:
    import psutil

__all__ = [
    "MAX_MATCHING",
    "ProcessSelector",
    "TargetProcess",
    "protected",
    "resolve_process",
    "resolve_processes",
]

MAX_MATCHING = 20  # more processes than this matching one selector: too broad to be a target
_PIDFILE_BYTES = 32
# Command lines of mlchaos's own runners and agents (never a fault's target).
_MLCHAOS_ITSELF = re.compile(
    r"(?:^|[\s/])(?:-m\s+)?mlchaos(?:/__main__\.py)?\s+(?:run|rehearse|halt|agent)\b"
)


class ProcessSelector(BaseModel):
    """Exactly one of ``pidfile``, ``pattern`` or ``port``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pidfile: str | None = Field(
        None, description="file holding the pid (read when used); relative to the spec file"
    )
    pattern: str | None = Field(
        None, description="regular expression searched in the command line; must match one"
    )
    port: int | None = Field(None, ge=1, le=65535, description="the TCP port it listens on")
    pick: Literal["one"] | Share | None = Field(
        None,
        description="when several processes match: 'one' of them at random, or a share of them "
        "(e.g. 50%, at least one); default: exactly one must match",
    )

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [v for v in (self.pidfile, self.pattern, self.port) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'pidfile', 'pattern' or 'port'")
        return self

    def describe(self) -> str:
        if self.pidfile is not None:
            what = f"the process in {self.pidfile}"
        elif self.pattern is not None:
            what = f"the process matching /{self.pattern}/"
        else:
            what = f"the process listening on port {self.port}"
        if self.pick is None:
            return what
        some = "one" if self.pick == "one" else str(self.pick)
        return f"{some} of {what.replace('the process', 'the processes', 1)}"

    def picked(self, matching: int) -> int:
        """How many of ``matching`` processes the fault acts on."""
        if self.pick is None or matching == 0:
            return matching
        if self.pick == "one":
            return 1
        return max(1, math.ceil(self.pick.fraction * matching - 1e-9))

    def relative_to(self, base: Path) -> ProcessSelector:
        """The same selector with a relative pid file made absolute against ``base``."""
        if self.pidfile is None or Path(self.pidfile).is_absolute():
            return self
        return self.model_copy(update={"pidfile": str(base / self.pidfile)})


class TargetProcess(BaseModel):
    """A resolved process: pid plus its start time, so a reused pid is never mistaken for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pid: int
    created: float
    name: str

    def alive(self) -> psutil.Process | None:
        """The process if it still exists and is the same one; None otherwise."""
        import psutil  # noqa: PLC0415

        try:
            proc = psutil.Process(self.pid)
            return proc if proc.create_time() == self.created else None
        except psutil.Error:
            return None


def resolve_process(selector: ProcessSelector) -> TargetProcess:
    """The one process the selector names, or RunError saying why there is none to act on."""
    if selector.pick is not None:
        raise RunError(f"{selector.describe()}: 'pick' is for kill faults, which act on several")
    (target,) = resolve_processes(selector)
    return target


def resolve_processes(
    selector: ProcessSelector, rng: random.Random | None = None, *, every: bool = False
) -> list[TargetProcess]:
    """The processes the selector names (exactly one without ``pick``; else the picked ones,
    drawn with ``rng``, or all it may pick from with ``every``), or RunError saying why there
    is none to act on."""
    import psutil  # noqa: PLC0415

    what = selector.describe()
    try:
        pids = _candidates(selector)
    except psutil.AccessDenied:
        raise RunError(f"not allowed to look up {what}") from None
    if len(pids) > MAX_MATCHING:  # counted before any is set aside: a broad net is refused
        raise RunError(
            f"{len(pids)} processes match ({what}): more than {MAX_MATCHING}, too broad to be a "
            "target; make the pattern more specific"
        )
    if selector.pidfile is not None or selector.port is not None:
        guarded = protected(pids)
        if guarded:
            pid, why = next(iter(guarded.items()))
            raise RunError(f"{what} is pid {pid}, {why}: mlchaos never acts on it")
    else:  # a pattern: the protected processes are simply not among its matches
        pids = [p for p in pids if p not in protected(pids)]
    if not pids:
        raise RunError(f"no running process is {what[4:]}")
    if len(pids) > 1 and selector.pick is None:
        raise RunError(
            f"{len(pids)} processes match ({what}): pids {sorted(pids)[:8]}; "
            "'pick: one' or a share (pick: 50%) acts on some of them"
        )
    count = len(pids) if every else selector.picked(len(pids))
    chosen = (rng or random.Random()).sample(sorted(pids), count)
    targets = []
    for pid in chosen:
        try:
            proc = psutil.Process(pid)
            targets.append(
                TargetProcess(pid=proc.pid, created=proc.create_time(), name=proc.name())
            )
        except psutil.NoSuchProcess:
            raise RunError(f"{what} (pid {pid}) exited") from None
        except psutil.AccessDenied:
            raise RunError(f"not allowed to inspect {what} (pid {pid})") from None
    return targets


def protected(pids: list[int]) -> dict[int, str]:
    """Which of ``pids`` mlchaos must never act on, each with the reason."""
    import psutil  # noqa: PLC0415

    me = os.getpid()
    lineage = {me}
    try:
        lineage |= {p.pid for p in psutil.Process(me).parents()}
    except psutil.Error:
        lineage.add(os.getppid())
    uid = os.getuid()
    out: dict[int, str] = {}
    for pid in pids:
        if pid <= 1:
            out[pid] = "init"
        elif pid in lineage:
            out[pid] = "mlchaos itself or one of its ancestors"
        else:
            try:
                proc = psutil.Process(pid)
                if _MLCHAOS_ITSELF.search(" ".join(proc.cmdline())):
                    out[pid] = "an mlchaos runner or agent"
                elif proc.uids().real != uid:
                    out[pid] = f"a process of another user (uid {proc.uids().real})"
            except psutil.Error:
                continue  # gone (or unreadable): resolution says so next
    return out


def _candidates(selector: ProcessSelector) -> list[int]:
    import psutil as ps  # noqa: PLC0415

    if selector.pidfile is not None:
        return _from_pidfile(Path(selector.pidfile))
    if selector.pattern is not None:
        regex = re.compile(selector.pattern)
        found = []
        for proc in ps.process_iter(["pid", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if cmdline and regex.search(cmdline):
                found.append(int(proc.info["pid"]))
        return found
    return sorted(
        {
            c.pid
            for c in ps.net_connections(kind="tcp")
            if c.status == ps.CONN_LISTEN and c.laddr and c.laddr.port == selector.port and c.pid
        }
    )


def _from_pidfile(path: Path) -> list[int]:
    """The pid a pid file names, if it names a process that started before the file was last
    written (a pid the system gave to another process since is never trusted). The file must
    be a regular file of a few bytes: a FIFO would block, a device never end."""
    import psutil  # noqa: PLC0415

    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise RunError(f"pid file {path} is not a regular file")
        if info.st_size > _PIDFILE_BYTES:
            raise RunError(f"pid file {path} holds {info.st_size} bytes: not a process id")
        with path.open("rb") as f:
            raw = f.read(_PIDFILE_BYTES + 1)
    except OSError as exc:
        raise RunError(f"cannot read pid file {path}: {exc.strerror or exc}") from None
    text = raw.decode("ascii", "replace").strip()
    if not text.isdigit() or int(text) <= 1:
        raise RunError(f"pid file {path} does not hold a process id: {text[:40]!r}")
    pid = int(text)
    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return []
    except psutil.Error:
        return [pid]  # exists but unreadable: resolution reports it
    if started > info.st_mtime + 1.0:  # (a second of slack: the clocks' granularities)
        raise RunError(
            f"pid file {path} names pid {pid}, but that process started after the file was "
            "written: the pid was reused by another process"
        )
    return [pid]
