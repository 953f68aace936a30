"""Durations, sizes and rates as policy.yaml writes them, and their refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from policies.durations import (
    Duration,
    Rate,
    TimeUnit,
    format_size,
    parse_duration,
    parse_rate,
    parse_size,
)


def ts(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("text", "count", "unit"),
    [
        ("3y", 3, TimeUnit.YEAR),
        ("18mo", 18, TimeUnit.MONTH),
        ("6w", 6, TimeUnit.WEEK),
        ("90d", 90, TimeUnit.DAY),
        ("12h", 12, TimeUnit.HOUR),
        ("30min", 30, TimeUnit.MINUTE),
        ("45s", 45, TimeUnit.SECOND),
        (" 2 years ", 2, TimeUnit.YEAR),
        ("1 Day", 1, TimeUnit.DAY),
        ("0s", 0, TimeUnit.SECOND),
    ],
)
def test_every_duration_form_parses(text: str, count: int, unit: TimeUnit) -> None:
    assert parse_duration(text) == Duration(count, unit)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("3yr", "'3yr' is not a duration; use a number and a unit"),
        ("3", "'3' is not a duration"),
        (3, "3 has no unit"),
        ("y3", "is not a duration"),
        ("-3y", "is not a duration"),
        ("1.5y", "is not a duration"),
        ("", "is not a duration"),
        ("18m", "'18m' is ambiguous; write 18mo for months or 18min for minutes"),
        (True, "is not a duration"),
        (None, "is not a duration"),
    ],
)
def test_bad_durations_are_refused_with_the_fix(value: object, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("text", "now", "expected"),
    [
        ("3y", ts(2026, 5, 28, 20, 0), ts(2023, 5, 28, 20, 0)),
        ("1y", ts(2024, 2, 29), ts(2023, 2, 28)),  # a leap day clamps to the month's end
        ("1mo", ts(2026, 3, 31, 12), ts(2026, 2, 28, 12)),
        ("18mo", ts(2026, 1, 15), ts(2024, 7, 15)),
        ("2w", ts(2026, 1, 15), ts(2026, 1, 1)),
        ("90d", ts(2026, 4, 1), ts(2026, 4, 1) - 90 * 86400),
        ("12h", ts(2026, 1, 1, 12), ts(2026, 1, 1)),
    ],
)
def test_before_steps_back_by_the_calendar(text: str, now: int, expected: int) -> None:
    assert parse_duration(text).before(now) == expected


@pytest.mark.parametrize(
    ("text", "seconds"), [("1h", 3600), ("1y", 365 * 86400), ("2mo", 60 * 86400), ("5min", 300)]
)
def test_nominal_seconds_for_schedules(text: str, seconds: int) -> None:
    assert parse_duration(text).seconds == seconds


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("500MB", 500_000_000),
        ("10GiB", 10 * 2**30),
        ("2TiB", 2 * 2**40),
        ("1.5 GB", 1_500_000_000),
        ("64mib", 64 * 2**20),
        ("1024", 1024),
        (4096, 4096),
        ("0", 0),
        ("7B", 7),
    ],
)
def test_sizes_in_decimal_and_binary_units(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["10 GX", "ten MB", "-5MB", -5, True, "MB", None, "1,5GB"])
def test_bad_sizes_are_refused_with_the_fix(value: object) -> None:
    with pytest.raises(ValueError) as caught:
        parse_size(value)
    assert "e.g. 500MB, 10GiB, 2TiB" in str(caught.value) or "negative" in str(caught.value)


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (1_288_490_189, "1.2 GiB"),
     (3 * 2**40, "3.0 TiB"), (5000 * 2**40, "5000.0 TiB")],
)
def test_format_size_uses_binary_units(size: int, text: str) -> None:
    assert format_size(size) == text


@pytest.mark.parametrize(
    ("text", "rate", "interval"),
    [
        ("35/10s", Rate(35, 10), 10 / 35),
        ("2/s", Rate(2, 1), 0.5),
        ("2.5/s", Rate(2.5, 1), 0.4),
        ("100/1min", Rate(100, 60), 0.6),
        ("10/2h", Rate(10, 7200), 720),
    ],
)
def test_rates(text: str, rate: Rate, interval: float) -> None:
    parsed = parse_rate(text)
    assert parsed == rate
    assert parsed.interval == pytest.approx(interval)


@pytest.mark.parametrize("value", ["35", "35/10", "0/s", "35/10y", "35/1w", "x/s", 35, None])
def test_bad_rates_are_refused_with_the_fix(value: object) -> None:
    with pytest.raises(ValueError) as caught:
        parse_rate(value)
    assert "e.g. 35/10s" in str(caught.value)


def test_rate_and_duration_print_as_written() -> None:
    assert str(parse_rate("35/10s")) == "35/10s"
    assert str(parse_rate("2.5/s")) == "2.5/1s"
    assert str(parse_duration("18mo")) == "18mo"
