"""Isolation mode: services in network namespaces of their own, joined by a bridge.

So that a network partition can be real — the kernel dropping packets between two services — each
isolated service runs in its own network namespace with one address on a private /24, and a bridge
joins them:

* every namespace is held by a tiny *holder* process (``python -m mlchaos.demo netns``: it
  unshares a new network namespace and waits), started like any demo service, so it dies with
  the supervisor (``PR_SET_PDEATHSIG``), and the namespace with it: nothing named is left behind;
* the bridge lives in a holder's namespace of its own (the *switch*), never on the host; each
  member's veth ends there, and so does one veth from the host, whose address (``.1``) lets the
  runner, the pipeline and Prometheus on the host reach every member;
* a service joins its member's namespace through ``nsenter --net=/proc/HOLDER/ns/net``, which
  then execs it (same pid), and binds the member's address (``MLCHAOS_DEMO_BIND``).

When the switch's holder dies its namespace goes, taking every veth and the host's address with
it. The only thing added to the host is that one veth with an address on a /24 no route there
uses (10.213.N.0/24). Needs root, ``ip`` and ``nsenter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import sys
from dataclasses import dataclass

from mlchaos.demo._services import ServiceGroup, ServiceSpec
from mlchaos.errors import ConfigError, RunError

__all__ = ["IsolatedNetwork", "Member", "hold", "isolation_unsupported"]

_HOLDER = (sys.executable, "-m", "mlchaos.demo", "netns")
_FIRST_HOST = 10  # members' addresses: .10, .11, ...


def isolation_unsupported() -> str | None:
    """Why this host cannot run isolation mode (None: it can)."""
    if sys.platform != "linux":
        return "isolation mode needs Linux network namespaces"
    if os.geteuid() != 0:
        return "isolation mode needs root (network namespaces, veth pairs, a bridge)"
    for tool in ("ip", "nsenter"):
        if shutil.which(tool) is None:
            return f"isolation mode needs {tool!r} (iproute2, util-linux), not found"
    return None


@dataclass(frozen=True)
class Member:
    """One service's namespace: its holder's pid and its address on the bridge."""

    name: str
    holder: int
    address: str

    def enter(self) -> list[str]:
        """The argv prefix that runs a program inside this namespace."""
        return ["nsenter", f"--net=/proc/{self.holder}/ns/net", "--"]


class IsolatedNetwork:
    """Namespaces joined by a bridge, their holders in ``group`` (stopped with it)."""

    def __init__(self, group: ServiceGroup) -> None:
        why = isolation_unsupported()
        if why is not None:
            raise ConfigError(why)
        self._group = group
        self._tag = secrets.token_hex(3)  # interface names: at most 15 characters
        self._switch = 0  # the switch's holder
        self._subnet: ipaddress.IPv4Network | None = None
        self._count = 0  # members asked for (several may be on their way at once)
        self.members: dict[str, Member] = {}

    @property
    def switch(self) -> int:
        """The pid of the switch's holder (0 before :meth:`start`)."""
        return self._switch

    @property
    def uplink(self) -> str:
        """The host's end of its veth to the switch."""
        return f"mlc{self._tag}h"

    async def start(self) -> None:
        """The switch: a bridge in a namespace of its own, and the host's veth into it."""
        self._subnet = await _free_subnet()
        self._switch = await self._holder("switch")
        await _ip(
            "link", "add", self.uplink, "type", "veth", "peer", "name", "up0", "netns", self._pid
        )
        await _ip_in(
            self._switch,
            "link add br0 type bridge",
            "link set br0 up",
            "link set up0 master br0",
            "link set up0 up",
        )
        await _ip("addr", "add", f"{self._host(1)}/24", "dev", self.uplink)
        await _ip("link", "set", self.uplink, "up")

    async def add(self, name: str) -> Member:
        """A new namespace for the service ``name``, on the bridge, with the next address."""
        index, self._count = self._count, self._count + 1
        holder = await self._holder(name)
        address = self._host(_FIRST_HOST + index)
        end = f"mlc{self._tag}{index}"
        await _ip("link", "add", end, "type", "veth", "peer", "name", "eth0", "netns", str(holder))
        await _ip("link", "set", end, "netns", self._pid)
        await _ip_in(self._switch, f"link set {end} master br0", f"link set {end} up")
        await _ip_in(
            holder, f"addr add {address}/24 dev eth0", "link set eth0 up", "link set lo up"
        )
        member = self.members[name] = Member(name, holder, address)
        return member

    async def close(self) -> None:
        """Remove the host's veth now (its holder's death would, a moment later)."""
        if self._switch:
            with contextlib.suppress(RunError):
                await _ip("link", "del", self.uplink)

    @property
    def _pid(self) -> str:
        return str(self._switch)

    def _host(self, index: int) -> str:
        assert self._subnet is not None
        return str(self._subnet.network_address + index)

    async def _holder(self, name: str) -> int:
        service = await self._group.start(ServiceSpec(f"netns-{name}", _HOLDER, ready_timeout=20))
        return service.pid


async def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.213.0.0/16 that no address or route on the host overlaps."""
    used: list[ipaddress.IPv4Network] = []
    for listed in (await _ip("-j", "-4", "route", "show", "table", "all"),):
        for route in json.loads(listed or "[]"):
            dst = route.get("dst", "")
            with contextlib.suppress(ValueError):
                used.append(ipaddress.IPv4Network(dst, strict=False))
    candidates = list(ipaddress.IPv4Network("10.213.0.0/16").subnets(new_prefix=24))
    start = secrets.randbelow(len(candidates))
    for net in candidates[start:] + candidates[:start]:
        if not any(net.overlaps(u) for u in used):
            return net
    raise RunError("no free /24 in 10.213.0.0/16 for the isolated demo")


async def _ip(*args: str) -> str:
    return await _run("ip", *args)


async def _ip_in(holder: int, *commands: str) -> None:
    """Several ``ip`` commands inside the holder's namespace, in one batch."""
    await _run(
        "nsenter", f"--net=/proc/{holder}/ns/net", "ip", "-batch", "-", stdin="\n".join(commands)
    )


async def _run(*argv: str, stdin: str | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(None if stdin is None else stdin.encode())
    if proc.returncode != 0:
        raise RunError(f"{' '.join(argv[:6])}: {err.decode().strip() or proc.returncode}")
    return out.decode()


def hold() -> int:
    """The holder: a new network namespace for this process, then wait to be stopped."""
    import ctypes  # noqa: PLC0415
    import signal  # noqa: PLC0415

    clone_newnet = 0x40000000
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(clone_newnet) != 0:
        err = ctypes.get_errno()
        sys.stderr.write(f"mlchaos.demo netns: unshare: {os.strerror(err)}\n")
        return 1
    sys.stdout.write(json.dumps({"ready": True, "name": "netns", "port": 0}) + "\n")
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()
