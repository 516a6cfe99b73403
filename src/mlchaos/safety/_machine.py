"""The addresses that belong to this machine: its own, and those of its network namespaces.

The sandbox profile is for services on this machine. Most listen on loopback; in the demo's
isolation mode (and in containers on this host) they listen on addresses of their own network
namespaces, which are on this machine too. Every namespace a visible process is in shows its
local addresses in ``/proc/PID/net/fib_trie`` (IPv4) and ``/proc/PID/net/if_inet6`` (IPv6), so
they can be listed without entering any namespace.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

__all__ = ["machine_addresses"]


def machine_addresses() -> set[str]:
    """Every local address of every network namespace a process visible to us is in."""
    found: set[str] = set()
    seen: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            inode = (proc / "ns" / "net").stat().st_ino
            if inode in seen:
                continue
            seen.add(inode)
            found |= _ipv4(proc / "net" / "fib_trie") | _ipv6(proc / "net" / "if_inet6")
        except OSError:  # gone, or not ours to look at
            continue
    return found


def _ipv4(fib_trie: Path) -> set[str]:
    """``|-- ADDRESS`` followed by ``/32 host LOCAL``: an address of the namespace."""
    lines = fib_trie.read_text().splitlines()
    return {
        lines[i].split("|--", 1)[1].strip()
        for i in range(len(lines) - 1)
        if "|--" in lines[i] and "/32 host LOCAL" in lines[i + 1]
    }


def _ipv6(if_inet6: Path) -> set[str]:
    try:
        text = if_inet6.read_text()
    except FileNotFoundError:  # IPv6 disabled
        return set()
    return {
        str(ipaddress.IPv6Address(bytes.fromhex(line.split()[0])))
        for line in text.splitlines()
        if line.strip()
    }
