"""Configuration of one proxy: where it listens, where it forwards, how it assigns arms."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlchaos.arms import ArmSplit
from mlchaos.units import Duration, PositiveDuration

__all__ = [
    "Address",
    "ControlConfig",
    "Protocol",
    "ProxyConfig",
    "ToxiproxyConfig",
    "is_loopback",
]


class Protocol(StrEnum):
    HTTP = "http"
    TCP = "tcp"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP address) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Address(_Model):
    """A host and port; parsed from ``"127.0.0.1:8080"``."""

    host: str
    port: int = Field(ge=0, le=65535)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        if isinstance(value, str):
            host, sep, port = value.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port such as '127.0.0.1:8080', got {value!r}")
            return {"host": host.strip("[]"), "port": int(port)}
        return value

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class ControlConfig(_Model):
    """The control API: loopback by default, bearer token from a file (created 0600 if absent)."""

    listen: Address = Address(host="127.0.0.1", port=0)
    token_file: str | None = None
    default_lease: PositiveDuration = Duration(5.0)
    max_lease: PositiveDuration = Field(
        Duration(300.0),
        description="the longest lease a client may ask for: a fault outlives a dead runner by "
        "at most this",
    )


class ToxiproxyConfig(_Model):
    """Toxiproxy's REST API (``mlchaos proxy serve --toxiproxy-api``). It has no token (no
    Toxiproxy client sends one), so it listens on loopback only and refuses browsers."""

    listen: Address = Address(host="127.0.0.1", port=8474)
    lease: PositiveDuration = Field(
        Duration(60.0),
        description="a toxic lapses this long after the last API call naming its proxy (or "
        "all proxies): a test suite that dies leaves no toxic behind",
    )

    @field_validator("listen")
    @classmethod
    def _loopback(cls, v: Address) -> Address:
        if not is_loopback(v.host):
            raise ValueError(
                f"the Toxiproxy API has no token, so it listens on loopback only "
                f"(127.0.0.1, ::1 or localhost), not {v.host!r}"
            )
        return v


class ProxyConfig(_Model):
    """One proxy: ``listen`` → ``upstream`` in ``protocol`` mode."""

    name: str = Field(
        "proxy",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="the 'proxy' label of its Prometheus metrics",
    )
    protocol: Protocol = Protocol.HTTP
    listen: Address
    upstream: Address
    arms: ArmSplit = ArmSplit()
    arm_listen: dict[Literal["experiment", "control"], Address] = Field(
        {},
        description="tcp: one more listener per arm; every connection to it is of that arm (a "
        "client that knows its arm, e.g. gRPC replay traffic, connects to its arm's listener)",
    )
    control: ControlConfig = ControlConfig()
    toxiproxy: ToxiproxyConfig | None = Field(
        None, description="also serve Toxiproxy's REST API, this proxy among its proxies"
    )
    upstream_timeout: PositiveDuration = Duration(30.0)
    max_idle_upstream: int = Field(
        1024,
        ge=0,
        description="idle upstream connections kept at most; within it the pool keeps one per "
        "client connection (it follows the concurrency it sees)",
    )
    header_timeout: PositiveDuration = Field(
        Duration(10.0),
        description="a client must send a request's whole head within this (slowloris)",
    )
    idle_timeout: PositiveDuration = Field(
        Duration(60.0), description="a client connection with no request for this long is closed"
    )
    max_buffered: int = Field(
        256 * 2**20,
        ge=1,
        description="bytes of request bodies held at once, all clients together; a request "
        "that would pass it gets 503",
    )
    max_connections: int = Field(
        4096,
        ge=1,
        description="client connections at once; beyond, 503 (at most what the open-file "
        "limit allows, keeping room for the upstream and the control API)",
    )

    @model_validator(mode="after")
    def _arm_listeners_on_tcp(self) -> Self:
        if self.arm_listen and self.protocol is not Protocol.TCP:
            raise ValueError(
                "arm_listen is for tcp proxies (an http request carries its arm in a header)"
            )
        return self
