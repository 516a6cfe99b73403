"""Durations, rates and shares parse once at the edge and print back canonically."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlchaos.units import Duration, Rate, Share


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("2s", 2.0),
        ("1.5s", 1.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("100us", 1e-4),
        ("-5s", -5.0),
    ],
)
def test_duration_parses_units(text: str, seconds: float) -> None:
    assert Duration.parse(text).seconds == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5", "5 parsecs", "ms", "1.2.3s"])
def test_duration_rejects_text_without_a_known_unit(bad: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        Duration.parse(bad)


def test_bare_number_duration_explains_the_missing_unit() -> None:
    with pytest.raises(ValueError, match="needs a unit"):
        Duration.parse(5)


@given(st.integers(min_value=0, max_value=10**7))
def test_duration_round_trips_through_its_text(ms: int) -> None:
    d = Duration(ms / 1000)
    assert Duration.parse(str(d)).seconds == pytest.approx(d.seconds, abs=1e-6)


@pytest.mark.parametrize(("text", "per_s"), [("50/s", 50.0), ("600/m", 10.0), ("3600/h", 1.0)])
def test_rate_parses_per_unit(text: str, per_s: float) -> None:
    assert Rate.parse(text).per_second == pytest.approx(per_s)


@pytest.mark.parametrize("bad", ["50", "0/s", "-5/s", "fast", 50])
def test_rate_rejects_missing_unit_zero_and_negative(bad: object) -> None:
    with pytest.raises(ValueError, match="rate"):
        Rate.parse(bad)


@pytest.mark.parametrize(
    ("text", "fraction"), [("5%", 0.05), ("100%", 1.0), ("0%", 0.0), (0.25, 0.25)]
)
def test_share_parses_percent_and_fractions(text: object, fraction: float) -> None:
    assert Share.parse(text).fraction == pytest.approx(fraction)


@pytest.mark.parametrize(
    ("bad", "message"),
    [("101%", "exceed 100%"), ("-1%", "negative"), (5, "between 0 and 1"), ("five", "share")],
)
def test_share_rejects_out_of_range_with_a_reason(bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Share.parse(bad)


@given(st.floats(min_value=0, max_value=100, allow_nan=False).map(lambda x: round(x, 4)))
def test_share_round_trips_through_its_text(pct: float) -> None:
    s = Share(pct / 100)
    assert Share.parse(str(s)).fraction == pytest.approx(s.fraction, abs=1e-8)
