"""Quantities written in policy.yaml: durations ("3y", "18mo", "90d"), sizes ("500MB", "2TiB")
and rates ("35/10s").

The policy schema validates its fields with these parsers and the planner measures time with
:class:`Duration`; reports and plan rendering format byte counts with :func:`format_size`. Every
parser raises ``ValueError`` whose text names the problem and the fix: the loader turns it into
the one-line policy error, the command line into an option error. Pure: no clock, no I/O.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

DURATION_HINT = "use a number and a unit, e.g. 3y, 18mo, 6w, 90d, 12h"
SIZE_HINT = "use a number and a unit, e.g. 500MB, 10GiB, 2TiB"
MAX_DURATION_SECONDS = 1000 * 365 * 86400
MAX_SIZE = 2**63 - 1  # what S3, Kaltura and every counter downstream can hold
RATE_HINT = "use calls/period, e.g. 35/10s, 2/s, 100/1min"


class TimeUnit(StrEnum):
    """Units of a duration. Years and months are calendar units; the others are fixed spans."""

    YEAR = "y"
    MONTH = "mo"
    WEEK = "w"
    DAY = "d"
    HOUR = "h"
    MINUTE = "min"
    SECOND = "s"


_FIXED_SECONDS = {
    TimeUnit.WEEK: 7 * 86400,
    TimeUnit.DAY: 86400,
    TimeUnit.HOUR: 3600,
    TimeUnit.MINUTE: 60,
    TimeUnit.SECOND: 1,
}
# Abbreviations beyond these ("3yr", "2hrs") are refused rather than guessed at.
# Only for ordering and for the schedule's interval: 365 and 30 days, as a cron user expects.
_NOMINAL_SECONDS = {TimeUnit.YEAR: 365 * 86400, TimeUnit.MONTH: 30 * 86400, **_FIXED_SECONDS}

_UNIT_ALIASES = {
    "y": TimeUnit.YEAR, "year": TimeUnit.YEAR, "years": TimeUnit.YEAR,
    "mo": TimeUnit.MONTH, "month": TimeUnit.MONTH, "months": TimeUnit.MONTH,
    "w": TimeUnit.WEEK, "week": TimeUnit.WEEK, "weeks": TimeUnit.WEEK,
    "d": TimeUnit.DAY, "day": TimeUnit.DAY, "days": TimeUnit.DAY,
    "h": TimeUnit.HOUR, "hour": TimeUnit.HOUR, "hours": TimeUnit.HOUR,
    "min": TimeUnit.MINUTE, "minute": TimeUnit.MINUTE, "minutes": TimeUnit.MINUTE,
    "s": TimeUnit.SECOND, "second": TimeUnit.SECOND, "seconds": TimeUnit.SECOND,
}  # fmt: skip

_DURATION_RE = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")


@dataclass(frozen=True, slots=True)
class Duration:
    """A span such as ``3y``: ``count`` of ``unit``. Years and months follow the calendar."""

    count: int
    unit: TimeUnit

    def __str__(self) -> str:
        return f"{self.count}{self.unit.value}"

    @property
    def seconds(self) -> int:
        """Nominal length in seconds (a year is 365 days, a month 30): for schedules, not ages."""
        return self.count * _NOMINAL_SECONDS[self.unit]

    def before(self, now: int) -> int:
        """The instant ``self`` before ``now`` (unix seconds, UTC).

        "3y before 2026-02-28" is 2023-02-28, a calendar step, so a rule's boundary falls where a
        person reading the policy expects it; a day that does not exist (31 → February) clamps to
        the month's last day.
        """
        if self.unit in _FIXED_SECONDS:
            return now - self.count * _FIXED_SECONDS[self.unit]
        moment = datetime.fromtimestamp(now, UTC)
        months = self.count * (12 if self.unit is TimeUnit.YEAR else 1)
        index = moment.year * 12 + (moment.month - 1) - months
        year, month = divmod(index, 12)
        month += 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return int(moment.replace(year=year, month=month, day=day).timestamp())


def parse_duration(value: object) -> Duration:
    """``"3y"``, ``"18mo"``, ``"6w"``, ``"90d"``, ``"12h"``, ``"30min"``, ``"45s"`` → Duration."""
    if isinstance(value, Duration):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{value!r} is not a duration; {DURATION_HINT}")
    if isinstance(value, int):
        raise ValueError(f"{value!r} has no unit; {DURATION_HINT}")
    text = value.strip().lower()
    found = _DURATION_RE.match(text)
    if found is None:
        raise ValueError(f"{value!r} is not a duration; {DURATION_HINT}")
    number, unit_text = found.groups()
    if unit_text == "m":
        # "18m" reads as months to some and minutes to others: make the writer say which.
        raise ValueError(f"{value!r} is ambiguous; write {number}mo for months or {number}min "
                         "for minutes")
    unit = _UNIT_ALIASES.get(unit_text)
    if unit is None:
        raise ValueError(f"{value!r} is not a duration; {DURATION_HINT}")
    # Past 1,000 years no rule means anything, and dates that far back do not exist.
    if int(number) * _NOMINAL_SECONDS[unit] > MAX_DURATION_SECONDS:
        raise ValueError(f"{value!r} is longer than 1000 years; {DURATION_HINT}")
    return Duration(int(number), unit)


# Decimal units as storage vendors write them; binary units as operating systems count.
_SIZE_UNITS = {
    "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50,
}  # fmt: skip
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")


def parse_size(value: object) -> int:
    """``"500MB"`` (10⁶), ``"10GiB"`` (2³⁰), ``"1.5TB"`` or a bare number of bytes → bytes."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size; {SIZE_HINT}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value!r} is negative; {SIZE_HINT}")
        if value > MAX_SIZE:
            raise ValueError(f"{value!r} is too large (at most 8 EiB); {SIZE_HINT}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a size; {SIZE_HINT}")
    found = _SIZE_RE.match(value.lower())
    if found is None or found.group(2) not in ("", *_SIZE_UNITS):
        raise ValueError(f"{value!r} is not a size; {SIZE_HINT}")
    number, unit = found.groups()
    size = float(number) * _SIZE_UNITS[unit or "b"]
    if not size <= MAX_SIZE:
        raise ValueError(f"{value!r} is too large (at most 8 EiB); {SIZE_HINT}")
    return int(size)


def format_size(size: int) -> str:
    """Bytes for people, in binary units: 1288490188 → ``"1.2 GiB"``."""
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(amount) < 1024 or unit == "TiB":
            return f"{int(amount)} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``calls`` per ``per_seconds`` (a Kaltura action class's budget)."""

    calls: float
    per_seconds: float

    def __str__(self) -> str:
        return f"{self.calls:g}/{self.per_seconds:g}s"

    @property
    def interval(self) -> float:
        """Seconds between two calls when paced evenly."""
        return self.per_seconds / self.calls


_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d*)\s*([a-z]+)\s*$")


def parse_rate(value: object) -> Rate:
    """``"35/10s"``, ``"2.5/s"``, ``"100/1min"`` → Rate."""
    if isinstance(value, Rate):
        return value
    found = _RATE_RE.match(value.lower()) if isinstance(value, str) else None
    if found is None:
        raise ValueError(f"{value!r} is not a rate; {RATE_HINT}")
    calls_text, count_text, unit_text = found.groups()
    unit = _UNIT_ALIASES.get(unit_text)
    if unit is None or unit not in _FIXED_SECONDS or unit is TimeUnit.WEEK:
        raise ValueError(f"{value!r} is not a rate; {RATE_HINT}")
    calls = float(calls_text)
    per = int(count_text or "1") * _FIXED_SECONDS[unit]
    if calls <= 0 or per <= 0:
        raise ValueError(f"{value!r} allows no calls; {RATE_HINT}")
    return Rate(calls, float(per))
