"""Typed values parsed once at the edge: durations (``250ms``), rates (``50/s``), shares (``5%``).

Each type validates inside pydantic models, serialises back to its canonical string and
publishes a JSON Schema pattern, so editors can check experiment files as they are typed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

__all__ = [
    "Duration",
    "NonNegativeDuration",
    "ParsedValue",
    "PositiveDuration",
    "Rate",
    "Share",
]

_DURATION_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h)")
_DURATION_FULL = re.compile(r"-?\s*(?:\d+(?:\.\d+)?\s*(?:us|µs|ms|s|m|h)\s*)+")
_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)")
_RATE_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_RATE_UNITS |= {"h": 3600.0, "hour": 3600.0}


class ParsedValue:
    """Base of values written as text in files: validate from text (or an instance), serialise
    back to canonical text, publish a JSON Schema string with a pattern and examples."""

    json_pattern: ClassVar[str]
    json_examples: ClassVar[list[str]]

    @classmethod
    def parse(cls, value: object) -> Self:  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    def _validate(cls, value: object) -> Self:
        if isinstance(value, cls):
            return value
        try:
            return cls.parse(value)
        except ValueError as exc:
            raise PydanticCustomError("mlchaos_value", "{msg}", {"msg": str(exc)}) from None

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "pattern": cls.json_pattern, "examples": cls.json_examples}


_LONGEST_S = 1000 * 86400.0  # no duration mlchaos takes is longer; beyond, a typo or an attack


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True, order=True)
class Duration(ParsedValue):
    """A length of time, written ``250ms``, ``2s``, ``1.5m``, ``1h``, ``1m30s``."""

    seconds: float

    json_pattern: ClassVar[str] = r"^-?\s*(\d+(\.\d+)?\s*(us|µs|ms|s|m|h)\s*)+$"
    json_examples: ClassVar[list[str]] = ["250ms", "2s", "1m30s"]

    @classmethod
    def parse(cls, value: object) -> Duration:
        if isinstance(value, bool) or not isinstance(value, str):
            if isinstance(value, int | float) and not isinstance(value, bool):
                raise ValueError(f"a duration needs a unit, e.g. '{value}s' or '{value}ms'")
            raise ValueError(f"expected a duration such as '250ms' or '2s', got {value!r}")
        text = value.strip()
        if not _DURATION_FULL.fullmatch(text):
            raise ValueError(f"expected a duration such as '250ms' or '2s', got {value!r}")
        sign = -1.0 if text.startswith("-") else 1.0
        total = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
        if not math.isfinite(total) or total > _LONGEST_S:
            raise ValueError(f"the duration {_short(text)!r} is too long (at most 1000 days)")
        return cls(sign * total)

    @property
    def ms(self) -> float:
        return self.seconds * 1000.0

    def __str__(self) -> str:
        s = self.seconds
        if s == 0:
            return "0s"
        sign = "-" if s < 0 else ""
        a = abs(s)
        if a < 1e-3:
            return f"{sign}{_num(a * 1e6)}us"
        if a < 1:
            return f"{sign}{_num(a * 1e3)}ms"
        if a < 60 or not (a / 60).is_integer():
            return f"{sign}{_num(a)}s"
        if a < 3600 or not (a / 3600).is_integer():
            return f"{sign}{_num(a / 60)}m"
        return f"{sign}{_num(a / 3600)}h"


@dataclass(frozen=True, order=True)
class Rate(ParsedValue):
    """Events per second, written ``50/s``, ``600/m`` or ``3600/h``."""

    per_second: float

    json_pattern: ClassVar[str] = r"^\d+(\.\d+)?\s*/\s*(s|sec|second|m|min|minute|h|hour)$"
    json_examples: ClassVar[list[str]] = ["50/s", "600/m"]

    @classmethod
    def parse(cls, value: object) -> Rate:
        if not isinstance(value, str):
            raise ValueError(f"expected a rate such as '50/s', got {value!r}")
        m = _RATE.fullmatch(value.strip())
        if not m:
            raise ValueError(f"expected a rate such as '50/s' or '600/m', got {value!r}")
        per_second = float(m.group(1)) / _RATE_UNITS[m.group(2)]
        if per_second <= 0:
            raise ValueError(f"a rate must be positive, got {value!r}")
        return cls(per_second)

    def __str__(self) -> str:
        return f"{_num(self.per_second)}/s"


@dataclass(frozen=True, order=True)
class Share(ParsedValue):
    """A fraction of traffic or a probability, written ``5%`` (or a number from 0 to 1)."""

    fraction: float

    json_pattern: ClassVar[str] = r"^\d+(\.\d+)?\s*%$"
    json_examples: ClassVar[list[str]] = ["5%", "50%", "100%"]

    @classmethod
    def parse(cls, value: object) -> Share:
        if isinstance(value, bool):
            raise ValueError(f"expected a share such as '5%', got {value!r}")
        if isinstance(value, int | float):
            fraction = float(value)
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(
                    f"a share written as a number must lie between 0 and 1; "
                    f"write percentages with '%', e.g. '{value}%'"
                )
            return cls(fraction)
        if not isinstance(value, str) or not value.strip().endswith("%"):
            raise ValueError(f"expected a share such as '5%', got {value!r}")
        try:
            pct = float(value.strip()[:-1])
        except ValueError:
            raise ValueError(f"expected a share such as '5%', got {value!r}") from None
        if not math.isfinite(pct) or pct < 0:
            raise ValueError(f"a share cannot be negative, got {value!r}")
        if pct > 100:
            raise ValueError(f"a share cannot exceed 100%, got {value!r}")
        return cls(pct / 100.0)

    @property
    def percent(self) -> float:
        return self.fraction * 100.0

    def __str__(self) -> str:
        return f"{_num(self.fraction * 100.0)}%"


def _positive(d: Duration) -> Duration:
    if d.seconds <= 0:
        raise ValueError(f"must be positive, got {d}")
    return d


def _non_negative(d: Duration) -> Duration:
    if d.seconds < 0:
        raise ValueError(f"must not be negative, got {d}")
    return d


PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
NonNegativeDuration = Annotated[Duration, AfterValidator(_non_negative)]


def _num(x: float) -> str:
    """Shortest readable form of a number: no trailing zeros, no exponent for ordinary sizes."""
    text = f"{x:.6f}".rstrip("0").rstrip(".")
    return text or "0"
