"""Experiment schedules: the weekly time windows in which an experiment may run.

A :class:`Schedule` is a list of :class:`Window` s in one IANA time zone. Everything here is
pure logic on instants; measuring the traffic precondition (``max_rate``) and waiting for a
window are the runner's business.

Meaning of a window across daylight-saving changes
--------------------------------------------------
Each listed day gives one *occurrence*: the instants from the window's start on that local
date up to its end (on the same date, or on the next one when ``end`` is earlier than
``start``). Start and end are wall-clock readings, turned into instants like this:

* a reading that happens once is that instant;
* a reading that happens twice (the repeated hour when clocks go back) means its *first*
  occurrence, for both start and end, so an occurrence is always one unbroken stretch and a
  window ending inside the repeated hour does not reopen when the clock reads that hour again;
* a reading that never happens (the skipped hour when clocks go forward) means the instant of
  the jump, i.e. the first moment the clock reads later than it. On 2026-03-29 in
  Europe/Berlin a window starting at 02:30 therefore opens at 03:00 CEST, one ending at 02:30
  closes at 03:00 CEST, and one lying wholly inside the skipped hour does not open that day.

An occurrence includes its start and excludes its end.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated, Any, Final, Literal, Self, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from mlchaos.spec._checks import PromqlProbe
from mlchaos.units import Duration, PositiveDuration, Rate

__all__ = ["DAYS", "SEARCH_DAYS", "Day", "Schedule", "Window"]

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: Final[tuple[Day, ...]] = get_args(Day)
_DAY_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(DAYS)}

#: How far ahead next_open and closes_at look; every weekly window recurs within it.
SEARCH_DAYS: Final = 8
_EN_DASH: Final = "\u2013"
_DAY: Final = timedelta(days=1)

_DAY_ITEM = r"(mon|tue|wed|thu|fri|sat|sun)(\s*-\s*(mon|tue|wed|thu|fri|sat|sun))?|daily"
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_WINDOW_PATTERN = r"^\s*([A-Za-z][A-Za-z,\s-]*\s+)?\d{1,2}:\d{2}\s*[-\u2013]\s*\d{1,2}:\d{2}\s*$"
_WINDOW_TEXT = re.compile(
    r"(?:(?P<days>[a-z][a-z,\s-]*?)\s+)?(?P<start>\d{1,2}:\d{2})\s*[-\u2013]\s*"
    r"(?P<end>\d{1,2}:\d{2})",
    re.IGNORECASE,
)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- parsing ------------------------------------------------------------------------------


def _parse_clock(value: object) -> time:
    """``"HH:MM"`` (or ``"HH:MM:SS"``) to a naive ``time``; a ``time`` passes if naive."""
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ValueError("a window time takes no time zone; set the schedule's 'timezone'")
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 22:00 as the base-60 number 1320.
        hint = f"{value // 60:02d}:{value % 60:02d}"
        raise ValueError(
            f"expected a time such as '01:00' in quotes, got the number {value}; "
            f"if you wrote {value // 60}:{value % 60:02d} without quotes, YAML read it as a "
            f"number: write '{hint}'"
        )
    if not isinstance(value, str):
        raise ValueError(f"expected a time such as '01:00', got {value!r}")
    m = _CLOCK.fullmatch(value.strip())
    if not m:
        raise ValueError(f"expected a time written HH:MM such as '01:00', got {value!r}")
    hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if hour > 23:
        raise ValueError(f"hour must be 00 to 23, got {value!r} (write midnight as '00:00')")
    if minute > 59:
        raise ValueError(f"minutes must be 00 to 59, got {value!r}")
    if second > 59:
        raise ValueError(f"seconds must be 00 to 59, got {value!r}")
    return time(hour, minute, second)


def _format_clock(value: time) -> str:
    return f"{value:%H:%M:%S}" if value.second or value.microsecond else f"{value:%H:%M}"


ClockTime = Annotated[
    time,
    BeforeValidator(_parse_clock),
    PlainSerializer(_format_clock, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": r"^\d{1,2}:\d{2}(:\d{2})?$", "examples": ["01:00", "22:30"]}
    ),
]


def _day(token: str, whole: object) -> int:
    index = _DAY_INDEX.get(token)
    if index is None:
        raise ValueError(
            f"unknown day {token!r} in {whole!r}; expected one of {', '.join(DAYS)} "
            f"or a range such as 'mon-fri'"
        )
    return index


def _parse_days(value: object) -> object:
    """Expand ``"mon-fri"`` ranges (a string, or items of a list) into day names in week order.

    A range runs forward through the week and may wrap: ``"fri-mon"`` is fri, sat, sun, mon.
    ``"daily"`` is all seven days. A day listed twice, directly or through ranges, is an error.
    """
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        return value  # let pydantic report the wrong type
    seen: set[int] = set()
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"expected day names such as 'mon' or 'mon-fri', got {item!r}")
        token = item.strip().lower()
        if token == "daily":  # noqa: S105 - a day word, not a secret
            indices = list(range(7))
        elif "-" in token:
            first, _, last = (part.strip() for part in token.partition("-"))
            a, b = _day(first, item), _day(last, item)
            if a == b:
                raise ValueError(f"day range {item!r} starts and ends on the same day")
            indices = [(a + k) % 7 for k in range((b - a) % 7 + 1)]
        else:
            indices = [_day(token, item)]
        for index in indices:
            if index in seen:
                raise ValueError(f"day {DAYS[index]!r} is listed more than once")
            seen.add(index)
    if not seen:
        raise ValueError("list at least one day, or leave 'days' out for every day")
    return [DAYS[i] for i in sorted(seen)]


def _days_text(days: list[Day]) -> str:
    """Day names in week order with runs of consecutive days written as ranges."""
    indices = sorted(_DAY_INDEX[d] for d in days)
    if len(indices) == 7:
        return "daily"
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ",".join(DAYS[r[0]] if len(r) == 1 else f"{DAYS[r[0]]}-{DAYS[r[-1]]}" for r in runs)


# --- models -------------------------------------------------------------------------------


class Window(_Model):
    """A daily or weekly time window, e.g. ``mon-fri 01:00-05:00``.

    Written as a mapping (``days``, ``start``, ``end``) or as text:
    ``"mon-fri 01:00-05:00"``, ``"sat,sun 22:00-04:00"``, ``"22:00-04:00"`` (every day).
    """

    days: Annotated[
        list[Day],
        BeforeValidator(_parse_days),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "array", "items": {"type": "string", "pattern": f"^({_DAY_ITEM})$"}},
                    {"type": "string"},
                ]
            }
        ),
    ] = Field(
        default_factory=lambda: list(DAYS),
        description="days on which the window starts: names, ranges such as 'mon-fri'; "
        "default every day",
        json_schema_extra={"examples": [["mon-fri"], ["sat", "sun"]]},
    )
    start: ClockTime = Field(description="local time the window opens, HH:MM")
    end: ClockTime = Field(
        description="local time the window closes, HH:MM; earlier than start means the window "
        "crosses midnight into the next day"
    )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        as_mapping = handler.resolve_ref_schema(handler(schema))
        as_text = {
            "type": "string",
            "pattern": _WINDOW_PATTERN,
            "examples": ["mon-fri 01:00-05:00", "22:00-04:00"],
        }
        return {"anyOf": [dict(as_mapping), as_text]}

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        if isinstance(value, str):
            m = _WINDOW_TEXT.fullmatch(value.strip())
            if not m:
                raise ValueError(
                    f"expected a window such as 'mon-fri 01:00-05:00' or '22:00-04:00', "
                    f"got {value!r}"
                )
            data: dict[str, Any] = {"start": m.group("start"), "end": m.group("end")}
            if m.group("days"):
                data["days"] = m.group("days")
            return data
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError(
                f"window start and end are both {_format_clock(self.start)}; a window needs a "
                f"length (end earlier than start crosses midnight)"
            )
        return self

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    def __str__(self) -> str:
        start, end = _format_clock(self.start), _format_clock(self.end)
        return f"{_days_text(self.days)} {start}{_EN_DASH}{end}"


class Schedule(_Model):
    """When an experiment may run: inside any of its windows, in one time zone."""

    windows: list[Window] = Field(min_length=1, description="allowed windows; any one suffices")
    timezone: str = Field("UTC", description="IANA time zone of the windows, e.g. Europe/Berlin")
    max_rate: Rate | None = Field(
        None,
        description="traffic precondition: run only while the service's current request rate "
        "is below this",
    )
    rate_window: PositiveDuration = Field(
        Duration(10.0),
        description="how long the edge proxy's request rate is measured before the run starts",
    )
    precondition: PromqlProbe | None = Field(
        None,
        description="or: a PromQL probe that must hold before the run starts, e.g. the "
        "service's request rate from Prometheus below a bound",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'"
            ) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def open_at(self, now: datetime) -> bool:
        """Whether ``now`` (timezone-aware, any zone) lies inside some window."""
        at = _utc(now)
        today = at.astimezone(self.zone).date()
        # Tomorrow too: where clocks go back across midnight, an instant can read as today
        # after tomorrow's first minutes have already passed once.
        return any(s <= at < e for s, e in self._occurrences(today - _DAY, today + _DAY))

    def next_open(self, now: datetime) -> datetime:
        """The earliest instant at or after ``now`` when some window is open: ``now`` itself if
        open. Aware, in the schedule's zone. Looks at most ``SEARCH_DAYS`` ahead and raises
        ValueError if nothing opens by then (possible only for a window that lies wholly in a
        skipped daylight-saving hour on its only day)."""
        at = _utc(now)
        zone = self.zone
        today = at.astimezone(zone).date()
        spans = self._occurrences(today - _DAY, today + SEARCH_DAYS * _DAY)
        if any(s <= at < e for s, e in spans):
            return at.astimezone(zone)
        horizon = at + SEARCH_DAYS * _DAY
        starts = [s for s, _ in spans if at < s <= horizon]
        if not starts:
            raise ValueError(
                f"no window of {self.describe()} opens within {SEARCH_DAYS} days of "
                f"{at.astimezone(zone):%Y-%m-%d %H:%M %Z}"
            )
        return min(starts).astimezone(zone)

    def closes_at(self, now: datetime) -> datetime | None:
        """When the open stretch containing ``now`` ends (None if closed now): the first instant
        after ``now`` that no window covers. Windows that touch or overlap are one stretch; the
        chain is followed at most ``SEARCH_DAYS`` ahead, so for windows covering the whole week
        this is the end of the last occurrence in that span. Aware, in the schedule's zone."""
        at = _utc(now)
        zone = self.zone
        today = at.astimezone(zone).date()
        spans = self._occurrences(today - _DAY, today + SEARCH_DAYS * _DAY)
        ends = [e for s, e in spans if s <= at < e]
        if not ends:
            return None
        end = max(ends)
        while further := [e for s, e in spans if s <= end < e]:
            end = max(further)
        return end.astimezone(zone)

    def describe(self) -> str:
        """Human text for messages, e.g. ``mon-fri 01:00-05:00 Europe/Berlin``, with an
        en dash between the times; a window's text form reads it back."""
        return f"{', '.join(str(w) for w in self.windows)} {self.timezone}"

    def _occurrences(self, first: date, last: date) -> list[tuple[datetime, datetime]]:
        """Non-empty (start, end) UTC instants of the windows starting on local dates
        ``first`` to ``last``, inclusive."""
        zone = self.zone
        spans: list[tuple[datetime, datetime]] = []
        day = first
        while day <= last:
            weekday = DAYS[day.weekday()]
            for w in self.windows:
                if weekday in w.days:
                    start = _instant(day, w.start, zone)
                    end = _instant(day + _DAY if w.crosses_midnight else day, w.end, zone)
                    if start < end:
                        spans.append((start, end))
            day += _DAY
        return spans


# --- instants -----------------------------------------------------------------------------


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {now.isoformat()}")
    return now.astimezone(UTC)


@lru_cache(maxsize=4096)
def _instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant at which the clock in ``zone`` reads ``at`` on ``day``: the first one if
    the reading happens twice, the moment of the jump if it is skipped (see module doc)."""
    wall = datetime.combine(day, at)
    earlier = wall.replace(tzinfo=zone).astimezone(UTC)  # fold=0: offset before any transition
    if earlier.astimezone(zone).replace(tzinfo=None) == wall:
        return earlier
    # Skipped: with fold=1 (the offset after the jump) the reading maps to an instant before
    # the jump, with fold=0 to one after it. Bisect on whole seconds for the jump itself.
    lo = math.floor(wall.replace(tzinfo=zone, fold=1).timestamp())
    hi = math.ceil(earlier.timestamp())
    before = datetime.fromtimestamp(lo, zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)
