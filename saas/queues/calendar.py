"""Business-hours calendars: when a queue is open, pure and clock-free.

Everything here is a plain function of its arguments (no I/O, no ``now()``), so the out-of-hours auto-reply, the
"we open at ..." hint and service metrics in business hours all share one definition that is cheap to test.

Decisions, stated once so every function agrees:

* **Edges.** An interval is half-open, ``[start, end)``: the opening instant is open, the closing instant is closed.
  Two intervals that touch (``09:00-12:00`` and ``12:00-18:00``) are one continuous open period.
* **Overnight ownership.** An interval with ``end <= start`` (``22:00-06:00``) starts on day D and runs into D+1's
  early morning. D's rules own the whole range: a holiday or override on D removes or replaces it entirely, while a
  holiday or override on D+1 does not touch the part spilling into D+1 (it only decides D+1's own intervals).
* **Overlaps.** Overlapping intervals inside one day's list are rejected (almost always a typo). Time covered by
  two days at once (D's overnight range running into D+1's own morning hours) is simply open: the union counts.
* **Holiday vs override.** A day may not be both a holiday and an override: the intent is contradictory.
* **Time zones and DST.** Intervals are wall-clock times in the calendar's zone, turned into real instants per day.
  A wall time that does not exist (the spring-forward gap) is moved to the first instant after the gap, so an
  opening at 02:30 on a night whose 02:00-03:00 is skipped happens at 03:00; an interval that lies wholly in the gap
  is empty that day. A wall time that happens twice (fall-back) means its first occurrence (PEP 495 ``fold=0``), so
  the repeated hour is counted once: a range ending at 01:30 closes on the first pass, and a range running through
  the repeated hour stays open for the real elapsed time (``00:00-03:00`` is four real hours that night).
* **Results** are timezone-aware datetimes in UTC; ``business_seconds_between`` counts real elapsed seconds.
* **Horizon.** Searches look at most 366 days ahead of (or behind) the given instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

__all__ = [
    "HORIZON",
    "Calendar",
    "DayOverride",
    "Holiday",
    "Interval",
    "WeeklyHours",
    "build_calendar",
    "business_seconds_between",
    "is_open",
    "next_closing",
    "next_opening",
    "window_key",
]

HORIZON = timedelta(days=366)
"""How far ``next_opening``/``next_closing``/``window_key`` look before giving up."""

_DAY = timedelta(days=1)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class Interval(msgspec.Struct, frozen=True):
    """Open from ``start`` until ``end`` (wall clock); ``end <= start`` runs overnight into the next day."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("interval times are wall-clock times in the calendar's zone and must not carry a tzinfo")
        if self.start == self.end:
            raise ValueError(
                f"interval {self.start.isoformat()}-{self.end.isoformat()} is empty; "
                "use an end before the start for an overnight range"
            )

    @property
    def overnight(self) -> bool:
        """Whether the range crosses midnight into the next day."""
        return self.end <= self.start

    def label(self) -> str:
        """``HH:MM[:SS]-HH:MM[:SS]``, for error messages."""
        return f"{self.start.isoformat()}-{self.end.isoformat()}"


def _offsets(interval: Interval) -> tuple[timedelta, timedelta]:
    """The interval as offsets from its own day's midnight, so overnight ranges compare with same-day ones."""
    midnight = datetime.combine(date.min, time())
    start = datetime.combine(date.min, interval.start) - midnight
    end = datetime.combine(date.min, interval.end) - midnight
    return start, end + _DAY if interval.overnight else end


def _check_day(intervals: Sequence[Interval], where: str) -> None:
    spans = sorted(((_offsets(iv), iv) for iv in intervals), key=lambda pair: pair[0])
    for (left, left_iv), (right, right_iv) in pairwise(spans):
        if right[0] < left[1]:
            raise ValueError(f"{where}: intervals {left_iv.label()} and {right_iv.label()} overlap")


class WeeklyHours(msgspec.Struct, frozen=True):
    """The regular week: ``days[0]`` is Monday's list of intervals, ``days[6]`` Sunday's (empty = closed)."""

    days: list[list[Interval]]

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ValueError(f"weekly hours need exactly 7 days (Monday first), got {len(self.days)}")
        for weekday, intervals in enumerate(self.days):
            _check_day(intervals, f"weekday {weekday} ({_WEEKDAYS[weekday]})")


class Holiday(msgspec.Struct, frozen=True):
    """Closed the whole day (an overnight range starting the day before still runs into its morning)."""

    day: date


class DayOverride(msgspec.Struct, frozen=True):
    """Replaces one day's regular hours; an empty list closes the day."""

    day: date
    intervals: list[Interval]


class Calendar(msgspec.Struct, frozen=True):
    """A queue's business hours: the regular week, holidays and per-day overrides, in one IANA time zone."""

    timezone: str
    weekly: WeeklyHours
    holidays: frozenset[date] = frozenset()
    overrides: dict[date, list[Interval]] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        _zone(self.timezone)
        for day, intervals in self.overrides.items():
            if day in self.holidays:
                raise ValueError(f"{day.isoformat()} is both a holiday and an override; keep one")
            _check_day(intervals, f"override {day.isoformat()}")

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's zone (``ZoneInfo`` caches instances, so this is cheap)."""
        return _zone(self.timezone)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as 'America/Sao_Paulo'") from None


def build_calendar(
    timezone: str, weekly: WeeklyHours, holidays: Iterable[Holiday] = (), overrides: Iterable[DayOverride] = ()
) -> Calendar:
    """Assemble a ``Calendar`` from holiday and override rows, rejecting two overrides for one day."""
    by_day: dict[date, list[Interval]] = {}
    for override in overrides:
        if override.day in by_day:
            raise ValueError(f"{override.day.isoformat()} has more than one override")
        by_day[override.day] = list(override.intervals)
    return Calendar(timezone, weekly, frozenset(h.day for h in holidays), by_day)


def _aware(at: datetime, name: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {at.isoformat()}")
    # All arithmetic happens in UTC: same-tzinfo subtraction and comparison ignore DST offsets in Python.
    return at.astimezone(UTC)


def _instant(zone: ZoneInfo, wall: datetime) -> datetime:
    """The UTC instant of a naive wall time: first occurrence if repeated, end of the gap if it never happens."""
    first = wall.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the earlier reading of a repeated time
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap fold=1 reads the post-transition offset (lands before the jump) and fold=0 the pre-transition one
    # (lands after it); the transition itself, at a whole second, lies between.
    lo = int(wall.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    hi = int(first.timestamp())
    before = datetime.fromtimestamp(lo, UTC).astimezone(zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def _rules(calendar: Calendar, day: date) -> Sequence[Interval]:
    if day in calendar.overrides:
        return calendar.overrides[day]
    if day in calendar.holidays:
        return ()
    return calendar.weekly.days[day.weekday()]


def _segments(calendar: Calendar, first: date, last: date) -> Iterator[tuple[datetime, datetime]]:
    """Merged open periods ``[start, end)`` in UTC for intervals starting on ``first..last``, in time order.

    Lazy so a search stops at the first hit; wall-to-instant mapping is monotone, so starts never go backwards.
    """
    zone = calendar.zone
    current: tuple[datetime, datetime] | None = None
    day = first
    while day <= last:
        for interval in sorted(_rules(calendar, day), key=lambda iv: iv.start):
            end_day = day + _DAY if interval.overnight else day
            start = _instant(zone, datetime.combine(day, interval.start))
            end = _instant(zone, datetime.combine(end_day, interval.end))
            if end <= start:  # wholly inside a spring-forward gap
                continue
            if current is None:
                current = (start, end)
            elif start <= current[1]:
                current = (current[0], max(current[1], end))
            else:
                yield current
                current = (start, end)
        day += _DAY
    if current is not None:
        yield current


def _local_day(calendar: Calendar, at: datetime) -> date:
    return at.astimezone(calendar.zone).date()


def is_open(calendar: Calendar, at: datetime) -> bool:
    """Whether the calendar is open at the aware instant ``at`` (opening instant open, closing instant closed)."""
    moment = _aware(at, "at")
    day = _local_day(calendar, moment)
    # Intervals are shorter than a wall day, so only the two previous days can still reach ``at``.
    return any(start <= moment < end for start, end in _segments(calendar, day - 2 * _DAY, day + _DAY))


def next_opening(calendar: Calendar, at: datetime) -> datetime | None:
    """The first open instant at or after ``at`` (``at`` itself if open), or None if closed for the next 366 days."""
    moment = _aware(at, "at")
    if is_open(calendar, moment):
        return moment
    day = _local_day(calendar, moment)
    for start, _end in _segments(calendar, day - 2 * _DAY, day + HORIZON + 2 * _DAY):
        if start > moment:
            return start if start - moment <= HORIZON else None
    return None


def next_closing(calendar: Calendar, at: datetime) -> datetime | None:
    """The first closed instant at or after ``at`` (``at`` itself if closed), or None if open for 366 days straight."""
    moment = _aware(at, "at")
    if not is_open(calendar, moment):
        return moment
    day = _local_day(calendar, moment)
    for start, end in _segments(calendar, day - 2 * _DAY, day + HORIZON + 2 * _DAY):
        if start <= moment < end:
            return end if end - moment <= HORIZON else None
    return None  # pragma: no cover - is_open said a segment contains ``moment``


def business_seconds_between(calendar: Calendar, start: datetime, end: datetime) -> float:
    """Open seconds (real elapsed time) in ``[start, end)``; a reversed range has none, so skewed clocks give 0."""
    lo, hi = _aware(start, "start"), _aware(end, "end")
    if hi <= lo:
        return 0.0
    total = timedelta()
    for seg_start, seg_end in _segments(calendar, _local_day(calendar, lo) - 2 * _DAY, _local_day(calendar, hi)):
        overlap = min(seg_end, hi) - max(seg_start, lo)
        if overlap > timedelta():
            total += overlap
    return total.total_seconds()


def _last_closing(calendar: Calendar, moment: datetime) -> datetime | None:
    day = _local_day(calendar, moment)
    for lookback in (8, HORIZON.days + 2):
        first = day - lookback * _DAY
        # Intervals from before ``first`` end before ``first + 1 day`` starts, so later closings are exact.
        trusted = _instant(calendar.zone, datetime.combine(first + _DAY, time()))
        closings = [end for _start, end in _segments(calendar, first, day) if end <= moment]
        if closings and closings[-1] >= trusted:
            return closings[-1] if moment - closings[-1] <= HORIZON else None
    return None


def window_key(calendar: Calendar, at: datetime) -> str:
    """A key naming the closed period that contains ``at``: ``closed-since:<UTC ISO instant of the last closing>``.

    Every instant of one closed period gets the same key and two periods never share one, so "send the
    out-of-hours reply at most once per window per contact" is a unique (contact, key) row. The last closing is used
    rather than the next opening so adding a future holiday or override does not re-key a window already running.
    A calendar closed for more than 366 days gets ``closed-since:over-366-days``. Raises ``ValueError`` when open:
    there is no closed window to name, and callers check ``is_open`` first.
    """
    moment = _aware(at, "at")
    if is_open(calendar, moment):
        raise ValueError(f"the calendar is open at {moment.isoformat()}; there is no closed window")
    closing = _last_closing(calendar, moment)
    return f"closed-since:{closing.isoformat()}" if closing is not None else "closed-since:over-366-days"
