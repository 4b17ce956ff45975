"""Business-hours calendars: edges, overnight ownership, holidays, overrides, time zones, DST and the search helpers.

Convention under test: intervals are half-open, so the opening instant is open and the closing instant is closed.
2026-03-02 is a Monday; America/Sao_Paulo is UTC-3 all year (no DST since 2019).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saas.queues.calendar import (
    Calendar,
    DayOverride,
    Holiday,
    Interval,
    WeeklyHours,
    build_calendar,
    business_seconds_between,
    is_open,
    next_closing,
    next_opening,
    window_key,
)

SP = "America/Sao_Paulo"
NY = "America/New_York"
LISBON = "Europe/Lisbon"
KOLKATA = "Asia/Kolkata"
HOUR = 3600.0


def iv(text: str) -> Interval:
    """``"09:00-12:00"`` -> Interval."""
    start, end = text.split("-")
    return Interval(time.fromisoformat(start), time.fromisoformat(end))


def week(**days: str) -> WeeklyHours:
    """``week(mon="09:00-12:00 13:00-18:00", sun="22:00-06:00")``; missing days are closed."""
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return WeeklyHours([[iv(part) for part in days.get(name, "").split()] for name in names])


def cal(
    timezone: str = SP,
    weekly: WeeklyHours | None = None,
    holidays: tuple[date, ...] = (),
    overrides: dict[date, str] | None = None,
) -> Calendar:
    by_day = {day: [iv(part) for part in text.split()] for day, text in (overrides or {}).items()}
    return Calendar(timezone, weekly if weekly is not None else OFFICE_WEEK, frozenset(holidays), by_day)


def local(timezone: str, text: str) -> datetime:
    """A wall time in ``timezone`` (first occurrence if repeated)."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(timezone))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


OFFICE_WEEK = week(
    mon="09:00-12:00 13:00-18:00",
    tue="09:00-12:00 13:00-18:00",
    wed="09:00-12:00 13:00-18:00",
    thu="09:00-12:00 13:00-18:00",
    fri="09:00-12:00 13:00-18:00",
    sat="09:00-13:00",
)
NIGHT_WEEK = week(sun="22:00-06:00", wed="22:00-06:00", thu="08:00-10:00")
ALWAYS = week(**dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "00:00-12:00 12:00-00:00"))
NEVER = week()


# --- is_open: plain days, several intervals, edges ------------------------------------------------------------


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        ("2026-03-02T08:59:59", False),
        ("2026-03-02T09:00:00", True),  # opening instant is open
        ("2026-03-02T11:59:59.999999", True),
        ("2026-03-02T12:00:00", False),  # closing instant is closed
        ("2026-03-02T12:30:00", False),  # lunch gap
        ("2026-03-02T13:00:00", True),
        ("2026-03-02T17:59:59", True),
        ("2026-03-02T18:00:00", False),
        ("2026-03-02T23:00:00", False),
        ("2026-03-07T09:00:00", True),  # Saturday
        ("2026-03-07T13:00:00", False),
        ("2026-03-08T10:00:00", False),  # Sunday closed
    ],
)
def test_is_open_plain_days_and_edges(wall: str, expected: bool) -> None:
    assert is_open(cal(), local(SP, wall)) is expected


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        ("2026-03-01T21:59:59", False),  # Sunday before the overnight range
        ("2026-03-01T22:00:00", True),
        ("2026-03-01T23:59:59", True),
        ("2026-03-02T00:00:00", True),  # across the week end: Sunday's range into Monday
        ("2026-03-02T05:59:59", True),
        ("2026-03-02T06:00:00", False),
        ("2026-03-04T22:00:00", True),  # Wednesday night
        ("2026-03-05T03:00:00", True),  # ... into Thursday
        ("2026-03-05T06:00:00", False),
        ("2026-03-05T08:00:00", True),  # Thursday's own hours
        ("2026-03-05T10:00:00", False),
        ("2026-03-07T23:00:00", False),  # Saturday night: no range
    ],
)
def test_is_open_overnight_ranges(wall: str, expected: bool) -> None:
    assert is_open(cal(weekly=NIGHT_WEEK), local(SP, wall)) is expected


# --- holidays and overrides: the day an overnight range starts owns it -------------------------------------------


@pytest.mark.parametrize(
    ("holidays", "wall", "expected"),
    [
        ((date(2026, 3, 1),), "2026-03-01T23:00:00", False),  # holiday on the start day removes the evening...
        ((date(2026, 3, 1),), "2026-03-02T03:00:00", False),  # ... and the spill into the next morning
        ((date(2026, 3, 2),), "2026-03-01T23:00:00", True),  # holiday on the end day does not touch it
        ((date(2026, 3, 2),), "2026-03-02T03:00:00", True),
        ((date(2026, 3, 5),), "2026-03-05T03:00:00", True),  # Thursday holiday: Wednesday's spill still runs
        ((date(2026, 3, 5),), "2026-03-05T08:30:00", False),  # ... but Thursday's own hours are gone
    ],
)
def test_holiday_on_overnight_start_vs_end_day(holidays: tuple[date, ...], wall: str, expected: bool) -> None:
    assert is_open(cal(weekly=NIGHT_WEEK, holidays=holidays), local(SP, wall)) is expected


def test_holiday_closes_a_regular_day() -> None:
    calendar = cal(holidays=(date(2026, 3, 3),))
    assert not is_open(calendar, local(SP, "2026-03-03T10:00"))
    assert is_open(calendar, local(SP, "2026-03-04T10:00"))


@pytest.mark.parametrize(
    ("weekly", "overrides", "wall", "expected"),
    [
        (OFFICE_WEEK, {date(2026, 3, 2): ""}, "2026-03-02T10:00", False),  # closed day
        (OFFICE_WEEK, {date(2026, 3, 2): ""}, "2026-03-03T10:00", True),  # only that day
        (OFFICE_WEEK, {date(2026, 3, 8): "10:00-14:00"}, "2026-03-08T10:00", True),  # special Sunday hours
        (OFFICE_WEEK, {date(2026, 3, 8): "10:00-14:00"}, "2026-03-08T14:00", False),
        (OFFICE_WEEK, {date(2026, 3, 2): "10:00-11:00"}, "2026-03-02T09:30", False),  # replaces, not adds
        (OFFICE_WEEK, {date(2026, 3, 2): "10:00-11:00"}, "2026-03-02T14:00", False),
        (NIGHT_WEEK, {date(2026, 3, 1): "20:00-02:00"}, "2026-03-01T21:00", True),  # override of the start day
        (NIGHT_WEEK, {date(2026, 3, 1): "20:00-02:00"}, "2026-03-02T01:59", True),
        (NIGHT_WEEK, {date(2026, 3, 1): "20:00-02:00"}, "2026-03-02T03:00", False),
        (NIGHT_WEEK, {date(2026, 3, 2): ""}, "2026-03-02T03:00", True),  # closing the end day keeps the spill
    ],
)
def test_overrides(weekly: WeeklyHours, overrides: dict[date, str], wall: str, expected: bool) -> None:
    assert is_open(cal(weekly=weekly, overrides=overrides), local(SP, wall)) is expected


def test_build_calendar_from_rows() -> None:
    calendar = build_calendar(
        SP, OFFICE_WEEK, [Holiday(date(2026, 3, 3))], [DayOverride(date(2026, 3, 8), [iv("10:00-14:00")])]
    )
    assert calendar == cal(holidays=(date(2026, 3, 3),), overrides={date(2026, 3, 8): "10:00-14:00"})


# --- time zones -----------------------------------------------------------------------------------------------------


NINE_TO_SIX = week(**dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), "09:00-18:00"))


@pytest.mark.parametrize(
    ("timezone", "instant", "expected"),
    [
        (SP, "2026-03-02T12:30:00", True),  # 09:30 in Sao Paulo
        (LISBON, "2026-03-02T12:30:00", True),  # 12:30 in Lisbon (WET, UTC+0)
        (KOLKATA, "2026-03-02T12:30:00", False),  # 18:00 in Kolkata: closing instant
        (KOLKATA, "2026-03-02T12:29:59", True),
        (KOLKATA, "2026-03-02T03:29:59", False),  # 08:59:59 IST
        (KOLKATA, "2026-03-02T03:30:00", True),  # 09:00 IST: the half-hour offset matters
        (SP, "2026-03-02T11:59:59", False),  # 08:59:59 in Sao Paulo
        (SP, "2026-03-02T21:00:00", False),  # 18:00 in Sao Paulo
        (LISBON, "2026-07-01T08:00:00", True),  # 09:00 WEST in summer
        (LISBON, "2026-07-01T07:59:59", False),
    ],
)
def test_same_instant_in_different_zones(timezone: str, instant: str, expected: bool) -> None:
    assert is_open(cal(timezone, NINE_TO_SIX), utc(instant)) is expected


def test_input_zone_does_not_matter() -> None:
    calendar = cal(KOLKATA, NINE_TO_SIX)
    instant = utc("2026-03-02T03:30:00")
    for zone in (SP, LISBON, KOLKATA, NY):
        assert is_open(calendar, instant.astimezone(ZoneInfo(zone)))


# --- DST ------------------------------------------------------------------------------------------------------------


def sunday(text: str) -> WeeklyHours:
    return week(sun=text)


@pytest.mark.parametrize(
    ("timezone", "weekly", "day", "opens", "closes", "seconds"),
    [
        # New York spring forward, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00Z).
        (NY, sunday("02:30-05:00"), "2026-03-08", "2026-03-08T07:00", "2026-03-08T09:00", 2 * HOUR),  # gap -> 03:00
        (NY, sunday("01:00-04:00"), "2026-03-08", "2026-03-08T06:00", "2026-03-08T08:00", 2 * HOUR),  # spans the gap
        (NY, sunday("01:00-02:30"), "2026-03-08", "2026-03-08T06:00", "2026-03-08T07:00", 1 * HOUR),  # ends in gap
        # New York fall back, 2026-11-01: 02:00 EDT falls back to 01:00 EST (06:00Z); 01:xx happens twice.
        (NY, sunday("00:00-03:00"), "2026-11-01", "2026-11-01T04:00", "2026-11-01T08:00", 4 * HOUR),  # real time
        (NY, sunday("01:30-03:00"), "2026-11-01", "2026-11-01T05:30", "2026-11-01T08:00", 2.5 * HOUR),  # 1st pass
        (NY, sunday("00:00-01:30"), "2026-11-01", "2026-11-01T04:00", "2026-11-01T05:30", 1.5 * HOUR),  # 1st pass
        # Lisbon, 2026-03-29: 01:00 WET jumps to 02:00 WEST (01:00Z); 2026-10-25: 02:00 WEST back to 01:00 WET.
        (LISBON, sunday("01:30-03:00"), "2026-03-29", "2026-03-29T01:00", "2026-03-29T02:00", 1 * HOUR),
        (LISBON, sunday("00:00-03:00"), "2026-10-25", "2026-10-24T23:00", "2026-10-25T03:00", 4 * HOUR),
    ],
)
def test_dst_transitions(timezone: str, weekly: WeeklyHours, day: str, opens: str, closes: str, seconds: float) -> None:
    calendar = cal(timezone, weekly)
    midnight_before = local(timezone, f"{day}T00:00") - timedelta(minutes=1)
    assert next_opening(calendar, midnight_before) == utc(opens)
    assert next_closing(calendar, utc(opens)) == utc(closes)
    assert is_open(calendar, utc(opens))
    assert not is_open(calendar, utc(opens) - timedelta(microseconds=1))
    assert not is_open(calendar, utc(closes))
    day_start = local(timezone, f"{day}T00:00") - timedelta(hours=2)
    assert business_seconds_between(calendar, day_start, day_start + timedelta(days=2)) == seconds


def test_interval_wholly_inside_spring_gap_is_empty_that_day() -> None:
    calendar = cal(NY, sunday("02:00-02:45"))
    assert business_seconds_between(calendar, utc("2026-03-08T00:00"), utc("2026-03-09T00:00")) == 0.0
    assert next_opening(calendar, utc("2026-03-08T00:00")) == local(NY, "2026-03-15T02:00")
    assert business_seconds_between(calendar, utc("2026-03-15T00:00"), utc("2026-03-16T00:00")) == 0.75 * HOUR


def test_fall_back_second_pass_of_repeated_hour_is_closed_after_first_pass_close() -> None:
    calendar = cal(NY, week(sat="22:00-01:30"))  # Saturday night into the fall-back Sunday
    assert is_open(calendar, utc("2026-11-01T05:15"))  # 01:15 EDT, first pass
    assert not is_open(calendar, utc("2026-11-01T06:15"))  # 01:15 EST, second pass
    assert business_seconds_between(calendar, utc("2026-10-31T00:00"), utc("2026-11-02T00:00")) == 3.5 * HOUR


# --- next_opening / next_closing ----------------------------------------------------------------------------------


HOLIDAY_MONDAY = cal(holidays=(date(2026, 3, 9),))


@pytest.mark.parametrize(
    ("calendar", "wall", "opening", "closing"),
    [
        (HOLIDAY_MONDAY, "2026-03-02T10:00", "2026-03-02T10:00", "2026-03-02T12:00"),  # open: itself
        (HOLIDAY_MONDAY, "2026-03-02T12:00", "2026-03-02T13:00", "2026-03-02T12:00"),  # closed: itself
        (HOLIDAY_MONDAY, "2026-03-02T09:00", "2026-03-02T09:00", "2026-03-02T12:00"),
        (HOLIDAY_MONDAY, "2026-03-06T18:00", "2026-03-07T09:00", "2026-03-06T18:00"),  # Friday evening -> Saturday
        (HOLIDAY_MONDAY, "2026-03-07T13:00", "2026-03-10T09:00", "2026-03-07T13:00"),  # Sunday + holiday skipped
        (HOLIDAY_MONDAY, "2026-03-07T09:00", "2026-03-07T09:00", "2026-03-07T13:00"),
        (cal(weekly=NIGHT_WEEK), "2026-03-01T23:00", "2026-03-01T23:00", "2026-03-02T06:00"),  # across the week end
        (cal(weekly=NIGHT_WEEK), "2026-03-02T06:00", "2026-03-04T22:00", "2026-03-02T06:00"),
        (cal(weekly=week(mon="09:00-12:00 12:00-18:00")), "2026-03-02T10:00", "2026-03-02T10:00", "2026-03-02T18:00"),
        (cal(weekly=ALWAYS, holidays=(date(2026, 6, 1),)), "2026-03-02T10:00", "2026-03-02T10:00", "2026-06-01T00:00"),
    ],
)
def test_next_opening_and_closing(calendar: Calendar, wall: str, opening: str, closing: str) -> None:
    at = local(calendar.timezone, wall)
    assert next_opening(calendar, at) == local(calendar.timezone, opening)
    assert next_closing(calendar, at) == local(calendar.timezone, closing)


def test_results_are_utc() -> None:
    result = next_opening(HOLIDAY_MONDAY, local(SP, "2026-03-07T13:00"))
    assert result is not None and result.tzinfo is UTC and result == utc("2026-03-10T12:00")


def test_never_opens_and_never_closes() -> None:
    at = local(SP, "2026-03-02T10:00")
    assert next_opening(cal(weekly=NEVER), at) is None
    assert next_closing(cal(weekly=NEVER), at) == at
    assert next_closing(cal(weekly=ALWAYS), at) is None
    assert next_opening(cal(weekly=ALWAYS), at) == at


@pytest.mark.parametrize(("days_ahead", "found"), [(300, True), (366, True), (367, False), (400, False)])
def test_search_horizon_is_366_days(days_ahead: int, found: bool) -> None:
    at = local(SP, "2026-03-02T10:00")
    day = at.date() + timedelta(days=days_ahead)
    calendar = cal(weekly=NEVER, overrides={day: "10:00-11:00"})
    assert next_opening(calendar, at) == (local(SP, f"{day.isoformat()}T10:00") if found else None)


# --- business_seconds_between ---------------------------------------------------------------------------------------


SUPPORT_WEEK = week(
    mon="09:00-18:00",
    tue="09:00-18:00",
    wed="09:00-18:00",
    thu="09:00-18:00",
    fri="09:00-18:00 22:00-02:00",
    sun="22:00-06:00",
)


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        # Mon 00:00 .. next Mon 00:00 with Wednesday a holiday:
        # Sun-night spill 6 + Mon 9 + Tue 9 + Wed 0 + Thu 9 + Fri 9 + Fri night 4 + Sun 22-24 2 = 48.
        ("2026-03-02T00:00", "2026-03-09T00:00", 48),
        ("2026-03-02T10:30", "2026-03-02T17:00", 6.5),  # inside one interval
        ("2026-03-02T05:00", "2026-03-02T10:00", 2),  # 05-06 spill + 09-10
        ("2026-03-04T00:00", "2026-03-05T00:00", 0),  # the holiday
        ("2026-03-06T17:00", "2026-03-07T01:00", 4),  # Fri 17-18 + 22-01
        ("2026-03-07T00:00", "2026-03-08T00:00", 2),  # Saturday: only Friday night's 00-02 spill
        ("2026-03-08T23:00", "2026-03-09T07:00", 7),  # Sunday night across the week end
        ("2026-03-02T12:00", "2026-03-02T12:00", 0),  # empty range
        ("2026-03-03T12:00", "2026-03-02T12:00", 0),  # reversed range
    ],
)
def test_business_seconds_between(start: str, end: str, hours: float) -> None:
    calendar = cal(weekly=SUPPORT_WEEK, holidays=(date(2026, 3, 4),))
    assert business_seconds_between(calendar, local(SP, start), local(SP, end)) == hours * HOUR


def test_business_seconds_holiday_on_overnight_start_day_removes_the_spill() -> None:
    calendar = cal(weekly=SUPPORT_WEEK, holidays=(date(2026, 3, 1),))  # Sunday holiday
    assert business_seconds_between(calendar, local(SP, "2026-03-02T00:00"), local(SP, "2026-03-02T09:00")) == 0.0


# --- window_key -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("2026-03-06T18:00", "2026-03-07T08:59:59", True),  # Friday close to Saturday open: one window
        ("2026-03-06T18:00", "2026-03-06T23:00", True),
        ("2026-03-02T12:00", "2026-03-02T12:59:59", True),  # lunch gap
        ("2026-03-02T12:00", "2026-03-02T18:00", False),  # lunch vs evening
        ("2026-03-06T20:00", "2026-03-07T13:00", False),  # Friday night vs Saturday afternoon
        ("2026-03-07T13:00", "2026-03-10T08:00", True),  # weekend + holiday Monday: one long window
    ],
)
def test_window_key_per_closed_period(first: str, second: str, same: bool) -> None:
    assert (window_key(HOLIDAY_MONDAY, local(SP, first)) == window_key(HOLIDAY_MONDAY, local(SP, second))) is same


def test_window_key_names_the_last_closing() -> None:
    assert window_key(HOLIDAY_MONDAY, local(SP, "2026-03-07T02:00")) == "closed-since:2026-03-06T21:00:00+00:00"


def test_window_key_ignores_future_edits_and_long_closures() -> None:
    at = local(SP, "2026-03-07T20:00")
    edited = cal(holidays=(date(2026, 3, 9), date(2026, 3, 10)))
    assert window_key(edited, at) == window_key(HOLIDAY_MONDAY, at)
    assert window_key(cal(weekly=NEVER), at) == "closed-since:over-366-days"
    long_closure = cal(weekly=NEVER, overrides={date(2026, 1, 5): "09:00-10:00"})
    assert window_key(long_closure, at) == "closed-since:2026-01-05T13:00:00+00:00"  # beyond the 8-day fast path


def test_window_key_refuses_open_instants() -> None:
    with pytest.raises(ValueError, match="open"):
        window_key(HOLIDAY_MONDAY, local(SP, "2026-03-02T10:00"))


# --- validation -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Interval(time(9), time(9)), "empty"),
        (lambda: Interval(time(9, tzinfo=UTC), time(10)), "tzinfo"),
        (lambda: WeeklyHours([[]] * 6), "exactly 7 days"),
        (lambda: week(tue="09:00-12:00 11:00-13:00"), r"weekday 1 \(Tuesday\): intervals 09:00:00-12:00:00 and"),
        (lambda: week(sun="22:00-06:00 23:00-01:00"), "overlap"),
        (lambda: week(mon="09:00-12:00 09:00-12:00"), "overlap"),
        (lambda: cal("Mars/Olympus_Mons"), "unknown time zone 'Mars/Olympus_Mons'"),
        (lambda: cal(""), "unknown time zone"),
        (lambda: cal("../etc/passwd"), "unknown time zone"),
        (lambda: cal(holidays=(date(2026, 3, 2),), overrides={date(2026, 3, 2): ""}), "both a holiday and an override"),
        (lambda: cal(overrides={date(2026, 3, 2): "09:00-12:00 10:00-11:00"}), "override 2026-03-02"),
        (
            lambda: build_calendar(
                SP, NEVER, (), [DayOverride(date(2026, 3, 2), []), DayOverride(date(2026, 3, 2), [])]
            ),
            "more than one override",
        ),
        (lambda: is_open(cal(), datetime(2026, 3, 2, 10)), "timezone-aware"),
        (lambda: next_opening(cal(), datetime(2026, 3, 2, 10)), "timezone-aware"),
        (lambda: business_seconds_between(cal(), utc("2026-03-02T00:00"), datetime(2026, 3, 3)), "end must be"),
    ],
)
def test_validation_errors(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match=message):
        build()


def test_touching_and_cross_day_overlapping_intervals_are_allowed() -> None:
    weekly = week(mon="09:00-12:00 12:00-18:00", sun="20:00-10:00")  # Sunday night runs into Monday's 09:00
    calendar = cal(weekly=weekly)
    assert next_closing(calendar, local(SP, "2026-03-01T21:00")) == local(SP, "2026-03-02T18:00")
    assert business_seconds_between(calendar, local(SP, "2026-03-01T00:00"), local(SP, "2026-03-03T00:00")) == 22 * HOUR


# --- properties -----------------------------------------------------------------------------------------------------


ZONES = (SP, NY, LISBON, KOLKATA, "Australia/Lord_Howe")  # Lord Howe shifts by 30 minutes


@st.composite
def day_hours(draw: st.DrawFn) -> list[Interval]:
    """0-2 same-day intervals plus maybe one overnight range after them: never overlapping within the day."""
    quarters = draw(st.lists(st.integers(0, 95), min_size=0, max_size=4, unique=True).map(sorted))
    intervals = [
        Interval(time(a // 4, a % 4 * 15), time(b // 4, b % 4 * 15))
        for a, b in zip(quarters[::2], quarters[1::2], strict=False)  # an odd last time is dropped
    ]
    last = quarters[-1] if quarters else -1
    if last < 95 and draw(st.booleans()):
        start = draw(st.integers(last + 1, 95))
        end = draw(st.integers(0, start - 1)) if start > 0 else 0
        if end != start:
            intervals.append(Interval(time(start // 4, start % 4 * 15), time(end // 4, end % 4 * 15)))
    return intervals


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    weekly = WeeklyHours([draw(day_hours()) for _ in range(7)])
    days = st.dates(min_value=date(2026, 2, 20), max_value=date(2026, 12, 31))
    holidays = draw(st.frozensets(days, max_size=4))
    overrides = draw(st.dictionaries(days.filter(lambda d: d not in holidays), day_hours(), max_size=3))
    return Calendar(draw(st.sampled_from(ZONES)), weekly, holidays, overrides)


instants = st.one_of(
    st.datetimes(min_value=datetime(2026, 3, 1), max_value=datetime(2026, 4, 10)),  # spring transitions
    st.datetimes(min_value=datetime(2026, 10, 1), max_value=datetime(2026, 11, 10)),  # autumn transitions
).map(lambda naive: naive.replace(tzinfo=UTC))


@settings(max_examples=200, deadline=None)
@given(calendars(), instants)
def test_property_is_open_iff_next_opening_is_now(calendar: Calendar, at: datetime) -> None:
    assert is_open(calendar, at) == (next_opening(calendar, at) == at)
    assert (not is_open(calendar, at)) == (next_closing(calendar, at) == at)


@settings(max_examples=200, deadline=None)
@given(calendars(), instants, st.integers(0, 14 * 86400), st.integers(0, 14 * 86400))
def test_property_business_seconds_are_additive(calendar: Calendar, a: datetime, gap1: int, gap2: int) -> None:
    b = a + timedelta(seconds=gap1)
    c = b + timedelta(seconds=gap2)
    whole = business_seconds_between(calendar, a, c)
    assert whole == pytest.approx(business_seconds_between(calendar, a, b) + business_seconds_between(calendar, b, c))
    assert 0.0 <= whole <= (c - a).total_seconds()


@settings(max_examples=100, deadline=None)
@given(calendars(), instants)
def test_property_window_key_is_stable_until_the_next_opening(calendar: Calendar, at: datetime) -> None:
    if is_open(calendar, at):
        return
    opening = next_opening(calendar, at)
    if opening is None:
        return
    assert window_key(calendar, at) == window_key(calendar, opening - timedelta(microseconds=1))
    closing = next_closing(calendar, opening)
    if closing is not None:
        assert window_key(calendar, closing) != window_key(calendar, at)
