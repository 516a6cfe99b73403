"""Network partitions between two network namespaces, by policy-routing rules inside them.

A partition cuts the packets between the namespaces of two processes (a gateway and its feature
store, say), not inside a proxy: the kernel itself drops or refuses them, for every connection
and every arm. Rules go only into those two namespaces, never into the agent's own (the host's):
a process that shares the agent's namespace cannot be partitioned.

* **silent** (packets vanish; connections time out): in the *receiving* namespace, a rule
  ``from <sender's address> blackhole``: its input route lookup drops them. A rule is consulted
  only after the ``local`` table's lookup, which sits at preference 0 and would deliver them
  first, so that lookup moves to preference 1 while a silent rule is in place (equivalent
  routing) and back when none is left.
* **loud** (refused at once): in the *sending* namespace, ``to <receiver's address> prohibit``:
  a connect fails with EACCES ("permission denied") without a packet sent; data on a connection
  opened before goes nowhere, so it times out, as behind a firewall that rejects.

``outbound`` cuts the process's packets to the peer, ``inbound`` the peer's to the process,
``both`` both. TCP needs both ways, so a one-way cut also stalls connections opened from the
other side; a one-way cut is about who is told (loud) and which datagrams pass.

Only IPv4 addresses of global scope are cut. Commands run as ``nsenter --net=/proc/PID/ns/net
ip ...`` through any process still in that namespace (found by the namespace's inode), so a
partition outlives a restart of the process it named and can be undone by the agent's guardian.
Standard library only: the guardian imports it too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "Direction",
    "Mode",
    "Netns",
    "Partition",
    "apply",
    "in_place",
    "netns_of",
    "plan",
    "release",
    "unsupported",
]

Direction = Literal["both", "outbound", "inbound"]
Mode = Literal["silent", "loud"]
_PREF = "0"  # ours, ahead of the local table's lookup
_LOCAL_MOVED = "1"  # where that lookup waits while a silent rule is in place
_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Netns:
    """A network namespace: its inode (what identifies it) and a process that was in it."""

    inode: int
    pid: int

    def path(self) -> str:
        """``/proc/PID/ns/net`` of a live process in it; LookupError when none is left (then
        the namespace, and every rule in it, is gone)."""
        for pid in (self.pid, *_pids()):
            try:
                if Path(f"/proc/{pid}/ns/net").stat().st_ino == self.inode:
                    return f"/proc/{pid}/ns/net"
            except OSError:
                continue
        raise LookupError(f"no process is left in network namespace {self.inode}")


@dataclass(frozen=True, slots=True)
class _Rule:
    netns: Netns
    match: tuple[str, str]  # ("from", address) or ("to", address)
    action: Literal["blackhole", "prohibit"]

    def args(self) -> list[str]:
        return ["pref", _PREF, *self.match, self.action]

    def shown(self, listed: list[dict[str, Any]]) -> bool:
        key = "src" if self.match[0] == "from" else "dst"
        return any(r.get(key) == self.match[1] and r.get("action") == self.action for r in listed)


@dataclass(frozen=True, slots=True)
class Partition:
    """The rules one partition added, each in its namespace."""

    rules: tuple[_Rule, ...]

    def to_json(self) -> str:
        return json.dumps(
            [
                {"inode": r.netns.inode, "pid": r.netns.pid, "match": r.match, "action": r.action}
                for r in self.rules
            ]
        )

    @classmethod
    def from_json(cls, text: str) -> Partition:
        return cls(
            tuple(
                _Rule(Netns(int(r["inode"]), int(r["pid"])), tuple(r["match"]), r["action"])
                for r in json.loads(text)
            )
        )

    def describe(self) -> list[str]:
        return [f"{' '.join(r.args())} in netns {r.netns.inode}" for r in self.rules]


def unsupported() -> str | None:
    """Why this host cannot make partitions (None: it can)."""
    if os.geteuid() != 0:
        return "network partitions need root (policy-routing rules in other namespaces)"
    for tool in ("ip", "nsenter"):
        if shutil.which(tool) is None:
            return f"network partitions need {tool!r} (iproute2, util-linux), not found"
    return None


def netns_of(pid: int) -> Netns:
    """The network namespace ``pid`` is in; OSError when the process is gone."""
    return Netns(Path(f"/proc/{pid}/ns/net").stat().st_ino, pid)


def _host() -> int:
    return Path("/proc/self/ns/net").stat().st_ino


def plan(process: Netns, peer: Netns, direction: Direction, mode: Mode) -> Partition:
    """The rules that cut ``process`` from ``peer``; ValueError when they cannot be cut (one
    namespace, the host's, or one without an IPv4 address)."""
    if process.inode == peer.inode:
        raise ValueError("both processes are in one network namespace: nothing to cut")
    for side in (process, peer):
        if side.inode == _host():
            raise ValueError(
                f"pid {side.pid} is in the agent's own (the host's) network namespace; a "
                "partition acts only inside the two services' own namespaces"
            )
    ways = {"both": [(process, peer), (peer, process)], "outbound": [(process, peer)]}
    rules: list[_Rule] = []
    for sender, receiver in ways.get(direction, [(peer, process)]):
        if mode == "silent":
            rules += [_Rule(receiver, ("from", a), "blackhole") for a in addresses(sender)]
        else:
            rules += [_Rule(sender, ("to", a), "prohibit") for a in addresses(receiver)]
    return Partition(tuple(rules))


def addresses(netns: Netns) -> list[str]:
    """The namespace's IPv4 addresses of global scope; ValueError when it has none."""
    shown = json.loads(_ip(netns, "-j", "-4", "addr", "show", "scope", "global") or "[]")
    found = [a["local"] for link in shown for a in link.get("addr_info", []) if "local" in a]
    if not found:
        raise ValueError(f"pid {netns.pid}'s network namespace has no IPv4 address to cut")
    return found


def apply(partition: Partition) -> None:
    """Add every rule; on a refusal, take back those added and raise OSError."""
    done: list[_Rule] = []
    try:
        for rule in partition.rules:
            if rule.action == "blackhole":
                _move_local(rule.netns)
            _ip(rule.netns, "rule", "add", *rule.args())
            done.append(rule)
    except (OSError, LookupError) as exc:
        release(Partition(tuple(done)))
        raise OSError(str(exc)) from None


def release(partition: Partition) -> bool:
    """Delete every rule (those already gone are skipped) and put the local table's lookup
    back where no rule of ours is left; True when every namespace was still there."""
    whole = True
    touched: dict[int, Netns] = {}
    for rule in partition.rules:
        try:
            _ip(rule.netns, "rule", "del", *rule.args())
        except LookupError:
            whole = False  # the namespace is gone, and the rule with it
            continue
        except OSError:
            pass  # not there (never added, or removed already)
        touched[rule.netns.inode] = rule.netns
    for netns in touched.values():
        try:
            _restore_local(netns)
        except (OSError, LookupError):
            whole = False
    return whole


def in_place(partition: Partition) -> bool:
    """Whether the kernel lists every rule of the partition."""
    try:
        return all(rule.shown(_rules(rule.netns, _PREF)) for rule in partition.rules)
    except (OSError, LookupError):
        return False


def _rules(netns: Netns, pref: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(
        _ip(netns, "-j", "rule", "show", "pref", pref) or "[]"
    )
    return listed


def _is_local(listed: list[dict[str, Any]]) -> bool:
    return len(listed) == 1 and listed[0].get("table") == "local" and listed[0]["src"] == "all"


def _move_local(netns: Netns) -> None:
    if any(r.get("table") == "local" for r in _rules(netns, _PREF)):
        _ip(netns, "rule", "add", "pref", _LOCAL_MOVED, "lookup", "local")
        _ip(netns, "rule", "del", "pref", _PREF, "lookup", "local")


def _restore_local(netns: Netns) -> None:
    if not _rules(netns, _PREF) and _is_local(_rules(netns, _LOCAL_MOVED)):
        _ip(netns, "rule", "add", "pref", _PREF, "lookup", "local")
        _ip(netns, "rule", "del", "pref", _LOCAL_MOVED, "lookup", "local")


def _ip(netns: Netns, *args: str) -> str:
    """Run ``ip ARGS`` inside ``netns``; its output. OSError with ip's message on failure."""
    argv = ["nsenter", f"--net={netns.path()}", "ip", *args]
    try:
        done = subprocess.run(  # noqa: S603 - ip and nsenter with arguments of our making
            argv, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise OSError(f"ip {' '.join(args)}: no answer within {_TIMEOUT_S:g}s") from None
    if done.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
