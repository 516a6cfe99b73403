"""Which process a process fault acts on: by pid file, by command-line pattern, or by the port
it listens on. Resolution uses psutil and refuses anything but exactly one safe process — or,
with ``pick``, one of the N that match, or a share of them, chosen at random."""

from __future__ import annotations

import math
import os
import random
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlchaos.errors import RunError
from mlchaos.units import Share

if TYPE_CHECKING:
    import psutil

__all__ = ["ProcessSelector", "TargetProcess", "resolve_process", "resolve_processes"]


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
    selector: ProcessSelector, rng: random.Random | None = None
) -> list[TargetProcess]:
    """The processes the selector names (exactly one without ``pick``; else the picked ones,
    drawn with ``rng``), or RunError saying why there is none to act on."""
    import psutil  # noqa: PLC0415

    what = selector.describe()
    try:
        pids = _candidates(selector)
    except psutil.AccessDenied:
        raise RunError(f"not allowed to look up {what}") from None
    own = {os.getpid(), os.getppid(), 1}
    if own & set(pids):
        raise RunError(f"{what} is mlchaos itself or init (pid {sorted(own & set(pids))[0]})")
    if not pids:
        raise RunError(f"no running process is {what[4:]}")
    if len(pids) > 1 and selector.pick is None:
        raise RunError(
            f"{len(pids)} processes match ({what}): pids {sorted(pids)[:8]}; "
            "'pick: one' or a share (pick: 50%) acts on some of them"
        )
    chosen = (rng or random.Random()).sample(sorted(pids), selector.picked(len(pids)))
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


def _candidates(selector: ProcessSelector) -> list[int]:
    import psutil as ps  # noqa: PLC0415

    if selector.pidfile is not None:
        path = Path(selector.pidfile)
        try:
            text = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise RunError(f"cannot read pid file {path}: {exc}") from None
        if not text.isdigit() or int(text) <= 1:
            raise RunError(f"pid file {path} does not hold a process id: {text[:40]!r}")
        return [int(text)] if ps.pid_exists(int(text)) else []
    if selector.pattern is not None:
        regex = re.compile(selector.pattern)
        us = {os.getpid(), os.getppid(), 1}  # the asker and init are never a pattern's target
        found = []
        for proc in ps.process_iter(["pid", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if proc.info["pid"] not in us and cmdline and regex.search(cmdline):
                found.append(int(proc.info["pid"]))
        return found
    return sorted(
        {
            c.pid
            for c in ps.net_connections(kind="tcp")
            if c.status == ps.CONN_LISTEN and c.laddr and c.laddr.port == selector.port and c.pid
        }
    )
