"""Arms of traffic: which slice a request belongs to, and the stable hash that decides it.

A request is in the *experiment* arm (faults apply), the *control* arm (measured beside it,
untouched) or in no arm. The arm travels in the ``x-mlchaos-arm`` header; where a caller does
not propagate it, a stable hash of a key (an entity id, a user id) decides, so that an edge
proxy and a dependency proxy agree without changes to the service between them.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum, StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlchaos.jsonpath import WILDCARD, Wildcard, parse_path
from mlchaos.units import Share

__all__ = [
    "ARM_HEADER",
    "FAULT_HEADER",
    "Arm",
    "ArmCode",
    "ArmKey",
    "ArmSplit",
    "arm_for_key",
    "arm_for_unit",
]

ARM_HEADER = "x-mlchaos-arm"
# A proxy marks an answer one of its faults changed with this header (value ``1``), and proxies
# pass it on: the client at the edge learns that a fault touched the request on its path.
FAULT_HEADER = "x-mlchaos-fault"


class Arm(StrEnum):
    EXPERIMENT = "experiment"
    CONTROL = "control"


class ArmCode(IntEnum):
    """Compact code of an arm in columnar observation stores."""

    NONE = 0
    EXPERIMENT = 1
    CONTROL = 2

    @classmethod
    def of(cls, arm: Arm | None) -> ArmCode:
        if arm is None:
            return cls.NONE
        return cls.EXPERIMENT if arm is Arm.EXPERIMENT else cls.CONTROL


def arm_for_unit(u: float, experiment: float, control: float) -> Arm | None:
    """Map a number in [0, 1) to an arm: the first ``experiment`` share, then ``control``."""
    if u < experiment:
        return Arm.EXPERIMENT
    if u < experiment + control:
        return Arm.CONTROL
    return None


def arm_for_key(key: bytes | str, experiment: float, control: float, salt: str = "") -> Arm | None:
    """Stable arm for a key: the same key, shares and salt give the same arm in every process."""
    data = key.encode() if isinstance(key, str) else key
    digest = hashlib.blake2b(data, digest_size=8, person=salt.encode()[:16]).digest()
    u = int.from_bytes(digest, "big") / 2**64
    return arm_for_unit(u, experiment, control)


class ArmKey(BaseModel):
    """Where the stable key that decides a request's arm comes from: a header or a JSON field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    header: str | None = None
    json_field: str | None = Field(
        None,
        description="path into a JSON request body, e.g. 'id' or 'inputs[0].data[0]'; one "
        "'[*]' names the keys of a batched request's rows, each with its own arm (e.g. "
        "'entities.user_id[*]' for a Feast lookup of several users)",
    )

    @field_validator("json_field")
    @classmethod
    def _valid_path(cls, v: str | None) -> str | None:
        if v is not None:
            parts = parse_path(v)
            wild = [p for p in parts if isinstance(p, Wildcard)]
            if wild and (len(wild) > 1 or wild[0] is not WILDCARD):
                raise ValueError(f"path {v!r}: at most one '[*]' (the rows of a batch)")
        return v

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.header is None) == (self.json_field is None):
            raise ValueError("give exactly one of 'header' or 'json_field'")
        return self


class ArmSplit(BaseModel):
    """Shares of traffic in the experiment and control arms; the rest is in neither."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
