"""Configuration of one proxy: where it listens, where it forwards, how it assigns arms."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlchaos.units import Duration, PositiveDuration, Share

__all__ = ["Address", "ArmKey", "ArmSplit", "ControlConfig", "Protocol", "ProxyConfig"]


class Protocol(StrEnum):
    HTTP = "http"
    TCP = "tcp"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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


class ArmKey(_Model):
    """Where the stable key that decides a request's arm comes from: a header or a JSON field."""

    header: str | None = None
    json_field: str | None = Field(
        None, description="dotted path into a JSON request body, e.g. 'id' or 'parameters.entity'"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.header is None) == (self.json_field is None):
            raise ValueError("give exactly one of 'header' or 'json_field'")
        return self


class ArmSplit(_Model):
    """Shares of traffic in the experiment and control arms; the rest is in neither."""

    experiment: Share = Share(0.0)
    control: Share = Share(0.0)
    key: ArmKey | None = Field(None, description="hash this key; without it, assign at random")
    salt: str = ""

    @model_validator(mode="after")
    def _fits(self) -> Self:
        total = self.experiment.fraction + self.control.fraction
        if total > 1.0 + 1e-12:
            raise ValueError(
                f"experiment ({self.experiment}) and control ({self.control}) together exceed 100%"
            )
        return self


class ControlConfig(_Model):
    """The control API: loopback by default, bearer token from a file (created 0600 if absent)."""

    listen: Address = Address(host="127.0.0.1", port=0)
    token_file: str | None = None
    default_lease: PositiveDuration = Duration(5.0)


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
    control: ControlConfig = ControlConfig()
    upstream_timeout: PositiveDuration = Duration(30.0)
    max_idle_upstream: int = Field(64, ge=0, description="pooled idle upstream connections")
