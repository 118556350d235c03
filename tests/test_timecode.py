"""Tests for frameseek.timecode: HH:MM:SS.mmm formatting and parsing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frameseek.timecode import format_timecode, parse_timecode


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.0, "00:00:00.000"),
        (1.5, "00:00:01.500"),
        (59.999, "00:00:59.999"),
        (60.0, "00:01:00.000"),
        (3599.9994, "00:59:59.999"),  # 0.4 ms rounds down
        (3599.9995, "01:00:00.000"),  # 0.5 ms rounds up and carries into the hour
        (3661.042, "01:01:01.042"),
        (0.0005, "00:00:00.001"),
        (100 * 3600 + 1.0, "100:00:01.000"),  # hours are not capped at 99
    ],
)
def test_format_timecode(seconds: float, expected: str) -> None:
    assert format_timecode(seconds) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:00.000", 0.0),
        ("01:01:01.042", 3661.042),
        ("1:02", 62.0),  # MM:SS
        ("02:03.5", 123.5),
        ("12.25", 12.25),  # plain seconds
        ("  7 ", 7.0),
        ("100:00:01", 360001.0),
    ],
)
def test_parse_timecode(text: str, expected: float) -> None:
    assert parse_timecode(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", [-0.001, -5.0, math.nan, math.inf, -math.inf])
def test_format_rejects_negative_and_non_finite(bad: float) -> None:
    with pytest.raises(ValueError):
        format_timecode(bad)


@pytest.mark.parametrize("bad", ["", "abc", "-1", "nan", "inf", "00:60:00", "00:00:60", "1:2:3:4", "-00:01"])
def test_parse_rejects_garbage_negative_and_non_finite(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_timecode(bad)


@given(st.integers(min_value=0, max_value=1000 * 3600 * 1000))
def test_round_trip_exact_to_the_millisecond(ms: int) -> None:
    seconds = ms / 1000
    text = format_timecode(seconds)
    assert parse_timecode(text) == pytest.approx(seconds, abs=1e-9)
    assert format_timecode(parse_timecode(text)) == text


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_round_trip_within_half_a_millisecond(seconds: float) -> None:
    parsed = parse_timecode(format_timecode(seconds))
    assert abs(parsed - seconds) <= 0.0005 + 1e-9
    assert format_timecode(parsed) == format_timecode(seconds)


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False), st.floats(min_value=0, max_value=1e6))
def test_format_is_monotonic(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    # same-width fields (hours < 1000 here) sort lexicographically like the numbers they show
    assert format_timecode(lo).rjust(16) <= format_timecode(hi).rjust(16)
