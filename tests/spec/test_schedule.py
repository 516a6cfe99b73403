"""Experiment schedules: allowed weekly windows in a time zone, across midnight and DST."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mlchaos.spec._schedule import DAYS, SEARCH_DAYS, Schedule, Window
from mlchaos.units import Duration, Rate

BERLIN = ZoneInfo("Europe/Berlin")
MINUTE = timedelta(minutes=1)


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Berlin wall-clock time (only for readings that occur exactly once)."""
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def schedule(*windows: str | dict[str, Any], timezone: str = "Europe/Berlin") -> Schedule:
    return Schedule.model_validate({"windows": list(windows), "timezone": timezone})


def same_instant(a: datetime, b: datetime) -> bool:
    # Aware datetimes in the same zone compare by wall clock; compare timestamps instead.
    return a.timestamp() == b.timestamp()


# --- open_at ------------------------------------------------------------------------------

WEEKDAYS_1_TO_5 = schedule("mon-fri 01:00-05:00")


def test_open_inside_a_window_closed_outside_start_inclusive_end_exclusive() -> None:
    monday = (2026, 11, 30)
    assert WEEKDAYS_1_TO_5.open_at(berlin(*monday, 3, 0))
    assert WEEKDAYS_1_TO_5.open_at(berlin(*monday, 1, 0))
    assert not WEEKDAYS_1_TO_5.open_at(berlin(*monday, 0, 59))
    assert not WEEKDAYS_1_TO_5.open_at(berlin(*monday, 5, 0))
    assert not WEEKDAYS_1_TO_5.open_at(berlin(*monday, 12, 0))


def test_days_filter_closes_unlisted_days() -> None:
    assert WEEKDAYS_1_TO_5.open_at(berlin(2026, 11, 27, 3))  # Friday
    assert not WEEKDAYS_1_TO_5.open_at(berlin(2026, 11, 28, 3))  # Saturday
    assert not WEEKDAYS_1_TO_5.open_at(berlin(2026, 11, 29, 3))  # Sunday


def test_open_at_reads_now_in_the_schedules_zone_whatever_zone_now_is_in() -> None:
    assert WEEKDAYS_1_TO_5.open_at(utc(2026, 11, 30, 0, 30))  # 01:30 CET
    assert not WEEKDAYS_1_TO_5.open_at(utc(2026, 11, 30, 4, 30))  # 05:30 CET
    new_york = ZoneInfo("America/New_York")
    assert WEEKDAYS_1_TO_5.open_at(datetime(2026, 11, 29, 20, 0, tzinfo=new_york))  # 02:00 CET


def test_midnight_crossing_window_is_open_on_the_next_morning_not_the_listed_mornings() -> None:
    monday_night = schedule("mon 22:00-04:00")
    assert monday_night.open_at(berlin(2026, 12, 1, 2))  # Tuesday 02:00: started Monday
    assert not monday_night.open_at(berlin(2026, 11, 30, 2))  # Monday 02:00: Sunday not listed
    assert monday_night.open_at(berlin(2026, 11, 30, 22))  # Monday 22:00: start
    assert not monday_night.open_at(berlin(2026, 11, 30, 21, 59))
    assert not monday_night.open_at(berlin(2026, 12, 1, 4))  # Tuesday 04:00: end, exclusive
    assert not monday_night.open_at(berlin(2026, 12, 1, 23))  # Tuesday night: not listed


def test_midnight_crossing_window_that_started_last_year_is_open() -> None:
    thursday_night = schedule("thu 22:00-04:00")
    assert thursday_night.open_at(berlin(2027, 1, 1, 2))  # started Thu 2026-12-31 22:00


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        WEEKDAYS_1_TO_5.open_at(datetime(2026, 11, 30, 3))
    with pytest.raises(ValueError, match="timezone-aware"):
        WEEKDAYS_1_TO_5.next_open(datetime(2026, 11, 30, 3))


# --- next_open ----------------------------------------------------------------------------


def test_next_open_when_closed_is_the_next_window_start_in_the_schedules_zone() -> None:
    opens = WEEKDAYS_1_TO_5.next_open(utc(2026, 11, 29, 23, 30))  # Mon 00:30 CET
    assert opens == berlin(2026, 11, 30, 1, 0)
    assert opens.tzinfo == BERLIN
    assert opens.utcoffset() == timedelta(hours=1)


def test_next_open_when_open_is_now_itself_expressed_in_the_schedules_zone() -> None:
    now = utc(2026, 11, 30, 1, 17, 42, 123)  # 02:17:42 CET, open
    opens = WEEKDAYS_1_TO_5.next_open(now)
    assert same_instant(opens, now)
    assert opens.tzinfo == BERLIN


def test_next_open_from_friday_after_the_window_skips_the_weekend() -> None:
    opens = WEEKDAYS_1_TO_5.next_open(berlin(2026, 11, 27, 6))  # Friday 06:00
    assert opens == berlin(2026, 11, 30, 1)
    assert f"{opens:%Y-%m-%d %H:%M %Z}" == "2026-11-30 01:00 CET"


def test_next_open_across_year_end() -> None:
    mondays = schedule("mon 09:00-10:00")
    assert mondays.next_open(berlin(2026, 12, 31, 12)) == berlin(2027, 1, 4, 9)
    fridays = schedule({"days": ["fri"], "start": "01:00", "end": "05:00"})
    assert fridays.next_open(berlin(2026, 12, 31, 23, 59)) == berlin(2027, 1, 1, 1)


def test_next_open_across_spring_forward_uses_the_summer_offset() -> None:
    """Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST; a 03:00 window opens at 01:00 UTC."""
    daily = schedule("03:00-05:00")
    opens = daily.next_open(berlin(2026, 3, 28, 6))
    assert same_instant(opens, utc(2026, 3, 29, 1))
    assert (opens.hour, opens.minute, opens.utcoffset()) == (3, 0, timedelta(hours=2))
    closes = daily.closes_at(opens)
    assert closes is not None
    assert same_instant(closes, utc(2026, 3, 29, 3))


def test_window_starting_in_the_skipped_hour_opens_when_the_clock_jumps() -> None:
    """02:30 never happens on 2026-03-29 in Berlin; the window opens at 03:00 CEST instead."""
    daily = schedule("02:30-04:00")
    opens = daily.next_open(utc(2026, 3, 29, 0, 0))  # 01:00 CET
    assert same_instant(opens, utc(2026, 3, 29, 1, 0))
    assert (opens.hour, opens.minute) == (3, 0)
    assert not daily.open_at(utc(2026, 3, 29, 0, 59, 59))  # 01:59:59 CET
    assert daily.open_at(utc(2026, 3, 29, 1, 0))  # 03:00 CEST


def test_window_across_spring_forward_is_an_hour_shorter_in_real_time() -> None:
    saturday_night = schedule("sat 22:00-04:00")
    closes = saturday_night.closes_at(berlin(2026, 3, 28, 23))
    assert closes is not None
    assert same_instant(closes, utc(2026, 3, 29, 2))  # 04:00 CEST
    assert closes.timestamp() - berlin(2026, 3, 28, 22).timestamp() == 5 * 3600


def test_window_lying_wholly_in_the_skipped_hour_does_not_open_that_day() -> None:
    sunday = schedule("sun 02:10-02:50")
    # the only Sunday within the 8-day search is 2026-03-29, whose 02:10-02:50 never happens
    with pytest.raises(ValueError, match=r"no window .* opens within 8 days"):
        sunday.next_open(berlin(2026, 3, 22, 4))
    assert sunday.next_open(berlin(2026, 3, 30, 4)) == berlin(2026, 4, 5, 2, 10)


def test_next_open_across_fall_back_uses_the_winter_offset() -> None:
    """Berlin 2026-10-25: 03:00 CEST goes back to 02:00 CET; a 03:00 window opens at 02:00 UTC."""
    daily = schedule("03:00-05:00")
    opens = daily.next_open(utc(2026, 10, 24, 12))
    assert same_instant(opens, utc(2026, 10, 25, 2))
    assert (opens.hour, opens.utcoffset()) == (3, timedelta(hours=1))


def test_window_starting_in_the_repeated_hour_opens_at_its_first_occurrence() -> None:
    daily = schedule("02:30-04:00")
    opens = daily.next_open(utc(2026, 10, 24, 23))  # 01:00 CEST
    assert same_instant(opens, utc(2026, 10, 25, 0, 30))  # 02:30 CEST
    assert opens.utcoffset() == timedelta(hours=2)
    assert daily.open_at(utc(2026, 10, 25, 1, 30))  # 02:30 CET, second time round: still open
    closes = daily.closes_at(opens)
    assert closes is not None
    assert same_instant(closes, utc(2026, 10, 25, 3))  # 04:00 CET: 2.5 real hours


def test_window_ending_in_the_repeated_hour_ends_at_its_first_occurrence_and_stays_shut() -> None:
    daily = schedule("01:00-02:30")
    closes = daily.closes_at(utc(2026, 10, 24, 23, 30))  # 01:30 CEST
    assert closes is not None
    assert same_instant(closes, utc(2026, 10, 25, 0, 30))  # 02:30 CEST
    second_pass = utc(2026, 10, 25, 1, 15)  # the clock reads 02:15 again (CET)
    assert not daily.open_at(second_pass)
    assert daily.next_open(second_pass) == berlin(2026, 10, 26, 1)


# --- closes_at ----------------------------------------------------------------------------


def test_closes_at_is_none_when_closed_and_the_window_end_when_open() -> None:
    assert WEEKDAYS_1_TO_5.closes_at(berlin(2026, 11, 30, 6)) is None
    closes = WEEKDAYS_1_TO_5.closes_at(berlin(2026, 11, 30, 2))
    assert closes == berlin(2026, 11, 30, 5)
    assert closes is not None
    assert closes.tzinfo == BERLIN


def test_closes_at_of_a_midnight_window_is_the_next_morning() -> None:
    closes = schedule("mon 22:00-04:00").closes_at(berlin(2026, 11, 30, 23))
    assert closes == berlin(2026, 12, 1, 4)


def test_closes_at_follows_touching_and_overlapping_windows_to_the_end_of_the_stretch() -> None:
    chained = schedule("mon 20:00-23:00", "mon 23:00-02:00", "tue 01:00-03:00")
    assert chained.closes_at(berlin(2026, 11, 30, 21)) == berlin(2026, 12, 1, 3)


def test_closes_at_of_an_always_open_schedule_lies_beyond_the_search_horizon() -> None:
    always = schedule("00:00-12:00", "12:00-00:00")
    now = berlin(2026, 11, 30, 9)
    closes = always.closes_at(now)
    assert closes is not None
    assert closes - now >= timedelta(days=SEARCH_DAYS)


# --- describe -----------------------------------------------------------------------------


def test_describe_names_days_times_and_zone() -> None:
    assert WEEKDAYS_1_TO_5.describe() == "mon-fri 01:00\u201305:00 Europe/Berlin"
    several = schedule("mon,wed,fri 22:00-04:00", "sat-sun 10:00-12:30", timezone="UTC")
    assert several.describe() == "mon,wed,fri 22:00\u201304:00, sat-sun 10:00\u201312:30 UTC"
    assert schedule("22:00-04:00").describe() == "daily 22:00\u201304:00 Europe/Berlin"


def test_describe_composes_the_outside_window_message() -> None:
    now = berlin(2026, 11, 27, 6)
    opens = WEEKDAYS_1_TO_5.next_open(now)
    message = (
        f"outside the allowed window ({WEEKDAYS_1_TO_5.describe()}); "
        f"next opens {opens:%Y-%m-%d %H:%M %Z}"
    )
    assert message == (
        "outside the allowed window (mon-fri 01:00\u201305:00 Europe/Berlin); "
        "next opens 2026-11-30 01:00 CET"
    )


def test_a_windows_text_reads_back_as_the_same_window() -> None:
    for text in ["mon-fri 01:00-05:00", "mon,wed,fri 22:00-04:00", "fri-mon 23:30-00:30"]:
        window = Window.model_validate(text)
        assert Window.model_validate(str(window)) == window


# --- parsing ------------------------------------------------------------------------------


def test_days_default_to_all_seven() -> None:
    assert Window.model_validate({"start": "01:00", "end": "02:00"}).days == list(DAYS)


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (["mon-fri"], ["mon", "tue", "wed", "thu", "fri"]),
        ("mon-fri", ["mon", "tue", "wed", "thu", "fri"]),
        (["sat", "mon-wed"], ["mon", "tue", "wed", "sat"]),
        (["fri-mon"], ["mon", "fri", "sat", "sun"]),  # a range may wrap through the weekend
        ("Sat, SUN", ["sat", "sun"]),
        (["daily"], list(DAYS)),
    ],
)
def test_day_ranges_expand_into_days_in_week_order(days: object, expected: list[str]) -> None:
    window = Window.model_validate({"days": days, "start": "01:00", "end": "02:00"})
    assert window.days == expected


def test_times_parse_from_hh_mm_into_datetime_time() -> None:
    window = Window.model_validate({"start": "7:05", "end": "22:30"})
    assert (window.start.hour, window.start.minute) == (7, 5)
    assert (window.end.hour, window.end.minute) == (22, 30)
    assert not window.crosses_midnight
    assert Window.model_validate({"start": "22:00", "end": "04:00"}).crosses_midnight


def test_window_text_form_parses_days_and_times() -> None:
    window = Window.model_validate("Mon-Fri 01:00\u201305:00")
    assert window.days == ["mon", "tue", "wed", "thu", "fri"]
    assert (window.start.hour, window.end.hour) == (1, 5)
    assert Window.model_validate("22:00 - 04:00").days == list(DAYS)


def test_schedule_from_yaml_round_trips_through_json() -> None:
    text = """
windows:
  - days: [mon-fri]
    start: "01:00"
    end: "05:00"
  - "sat,sun 22:00-04:00"
timezone: Europe/Berlin
max_rate: 50/s
rate_window: 1m
"""
    loaded = Schedule.model_validate(yaml.safe_load(text))
    assert loaded.max_rate == Rate(50.0)
    assert loaded.rate_window == Duration(60.0)
    dumped = loaded.model_dump(mode="json")
    assert dumped["windows"][0] == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "01:00",
        "end": "05:00",
    }
    assert Schedule.model_validate(dumped) == loaded


def test_schedule_defaults() -> None:
    plain = Schedule.model_validate({"windows": ["01:00-02:00"]})
    assert plain.timezone == "UTC"
    assert plain.max_rate is None
    assert plain.rate_window == Duration(10.0)


def test_json_schema_lets_editors_accept_the_text_forms() -> None:
    defs = Schedule.model_json_schema()["$defs"]
    as_mapping, as_text = defs["Window"]["anyOf"]
    assert re.fullmatch(as_text["pattern"].strip("^$"), "mon-fri 01:00\u201305:00")
    assert re.fullmatch(as_mapping["properties"]["start"]["pattern"].strip("^$"), "01:00")
    day_item = as_mapping["properties"]["days"]["anyOf"][0]["items"]["pattern"].strip("^$")
    assert all(re.fullmatch(day_item, d) for d in ["mon", "mon-fri", "daily"])
    assert not re.fullmatch(day_item, "funday")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"windows": ["01:00-02:00"], "timezone": "Mars/Olympus"},
            "unknown time zone 'Mars/Olympus'",
        ),
        ({"windows": ["01:00-02:00"], "timezone": ""}, "unknown time zone ''"),
        ({"windows": [{"start": "25:00", "end": "02:00"}]}, "hour must be 00 to 23, got '25:00'"),
        ({"windows": [{"start": "01:00", "end": "01:60"}]}, "minutes must be 00 to 59"),
        ({"windows": [{"start": "1am", "end": "02:00"}]}, "expected a time written HH:MM"),
        ({"windows": [{"start": "01:00", "end": "01:00"}]}, "start and end are both 01:00"),
        ({"windows": ["mon 22:00-22:00"]}, "start and end are both 22:00"),
        (
            {"windows": [{"days": ["mon", "funday"], "start": "01:00", "end": "02:00"}]},
            "unknown day 'funday'",
        ),
        (
            {"windows": [{"days": ["mon-fry"], "start": "01:00", "end": "02:00"}]},
            "unknown day 'fry'",
        ),
        (
            {"windows": [{"days": ["mon", "mon"], "start": "01:00", "end": "02:00"}]},
            "'mon' is listed more than once",
        ),
        (
            {"windows": [{"days": ["mon-fri", "wed"], "start": "01:00", "end": "02:00"}]},
            "'wed' is listed more than once",
        ),
        (
            {"windows": [{"days": ["tue-tue"], "start": "01:00", "end": "02:00"}]},
            "starts and ends on the same day",
        ),
        ({"windows": [{"days": [], "start": "01:00", "end": "02:00"}]}, "list at least one day"),
        ({"windows": []}, "at least 1 item"),
        ({"windows": ["weeknights"]}, "expected a window such as 'mon-fri 01:00-05:00'"),
        # YAML 1.1 reads an unquoted 22:00 as 1320
        ({"windows": [{"start": 1320, "end": "02:00"}]}, "write '22:00'"),
        ({"windows": ["01:00-02:00"], "rate_window": "0s"}, "must be positive"),
        ({"windows": ["01:00-02:00"], "max_rate": "fast"}, "expected a rate"),
        ({"windows": ["01:00-02:00"], "when": "never"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_schedules_raise_validation_errors_naming_the_problem(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Schedule.model_validate(data)
    assert message in str(info.value)


def test_the_unquoted_yaml_time_message_shows_what_was_meant() -> None:
    with pytest.raises(ValidationError) as info:
        Schedule.model_validate(yaml.safe_load("windows: [{start: 22:00, end: '04:00'}]"))
    assert "got the number 1320; if you wrote 22:00 without quotes" in str(info.value)


# --- properties ---------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Asia/Kolkata",  # fixed +05:30
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # half-hour DST shifts
    "America/Santiago",  # clocks change at midnight, so some dates have no 00:00
    "Pacific/Apia",  # skipped the whole of 2011-12-30
]
TRANSITIONS = [
    utc(2026, 3, 29, 1),
    utc(2026, 10, 25, 1),
    utc(2026, 3, 8, 7),
    utc(2026, 11, 1, 6),
    utc(2026, 4, 4, 15),
    utc(2026, 10, 3, 15, 30),
    utc(2026, 4, 5, 3),
    utc(2026, 9, 6, 4),
    utc(2011, 12, 30, 10),
]
SPAN = timedelta(days=2)  # how far the minute-by-minute brute force looks

clock_texts = st.one_of(
    st.integers(0, 24 * 60 - 1).map(lambda m: f"{m // 60:02d}:{m % 60:02d}"),
    st.sampled_from(["00:00", "00:30", "01:30", "02:00", "02:30", "03:00", "23:00", "23:59"]),
)
windows = st.fixed_dictionaries(
    {
        "days": st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True),
        "start": clock_texts,
        "end": clock_texts,
    }
).filter(lambda w: w["start"] != w["end"])


def schedules(zones: st.SearchStrategy[str]) -> st.SearchStrategy[Schedule]:
    return st.builds(
        lambda ws, tz: Schedule.model_validate({"windows": ws, "timezone": tz}),
        st.lists(windows, min_size=1, max_size=3),
        zones,
    )


instants = st.one_of(
    st.datetimes(
        min_value=datetime(2010, 1, 1),
        max_value=datetime(2035, 12, 31),
        timezones=st.just(UTC),
    ),
    st.builds(
        lambda t, s: t + timedelta(seconds=s),
        st.sampled_from(TRANSITIONS),
        st.integers(-3 * 86400, 86400),
    ),
)


@settings(max_examples=150)
@given(schedules(st.sampled_from(ZONES)), instants)
def test_next_open_is_open_not_before_now_and_nothing_opens_earlier(
    sched: Schedule, now: datetime
) -> None:
    try:
        opens = sched.next_open(now)
    except ValueError:
        # possible only for windows lying wholly in a skipped hour: then nothing is open soon
        assert not any(sched.open_at(now + k * MINUTE) for k in range(int(SPAN / MINUTE)))
        return
    assert opens.timestamp() >= now.timestamp()
    assert opens - now <= timedelta(days=SEARCH_DAYS)
    assert opens.tzinfo == sched.zone
    assert sched.open_at(opens)
    if sched.open_at(now):
        assert same_instant(opens, now)
    else:
        # (in UTC: arithmetic on an aware datetime in a DST zone is wall-clock arithmetic)
        assert not sched.open_at(opens.astimezone(UTC) - timedelta(microseconds=1))
    t = now
    while t < opens and t - now < SPAN:
        assert not sched.open_at(t), t
        t += MINUTE


@settings(max_examples=100)
@given(schedules(st.sampled_from(ZONES)), instants)
def test_closes_at_is_where_the_open_stretch_ends(sched: Schedule, now: datetime) -> None:
    closes = sched.closes_at(now)
    if not sched.open_at(now):
        assert closes is None
        return
    assert closes is not None
    assert closes > now
    assert closes.tzinfo == sched.zone
    if closes - now < timedelta(days=SEARCH_DAYS - 1):
        assert not sched.open_at(closes)
    t = now
    while t < closes and t - now < SPAN:
        assert sched.open_at(t), t
        t += MINUTE


@settings(max_examples=300)
@given(schedules(st.sampled_from(["UTC", "Asia/Kolkata"])), instants)
def test_open_at_without_dst_matches_minute_of_week_arithmetic(
    sched: Schedule, now: datetime
) -> None:
    """In a zone without DST a window is a fixed arc of the week: check against that."""
    week = 7 * 86400
    local = now.astimezone(sched.zone)
    second_of_week = local.weekday() * 86400 + local.hour * 3600 + local.minute * 60
    second_of_week += local.second
    expected = False
    for w in sched.windows:
        start = w.start.hour * 3600 + w.start.minute * 60
        length = (w.end.hour * 3600 + w.end.minute * 60 - start) % 86400
        for day in w.days:
            offset = (second_of_week - (DAYS.index(day) * 86400 + start)) % week
            expected = expected or offset < length
    assert sched.open_at(now) == expected
