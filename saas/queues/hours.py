"""Business hours as the API and the database spell them (JSON), turned into :class:`saas.queues.calendar.Calendar`.

A tenant has hours (``tenant_settings.hours``) and each queue may have its own (``queues.hours``); NULL means
"always open" for the tenant and "the tenant's hours" for a queue. Times are ``"HH:MM"`` wall-clock strings in the
calendar's zone (a queue's zone defaults to the tenant's), so the stored JSON reads like the portal shows it.
"""

from __future__ import annotations

from datetime import date, time
from typing import Annotated, Any

import msgspec

from saas.queues.calendar import Calendar, DayOverride, Holiday, Interval, WeeklyHours, build_calendar
from tenants.errors import InvalidInput

__all__ = ["HoursSpec", "IntervalSpec", "OverrideSpec", "calendar_or_none", "decode_hours", "hours_json", "to_calendar"]

Clock = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, 24 h")]


class IntervalSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Open from ``start`` to ``end``; an ``end`` at or before ``start`` runs overnight into the next day."""

    start: Clock
    end: Clock


class OverrideSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One day with other hours than usual (an empty list closes it)."""

    day: date
    intervals: Annotated[list[IntervalSpec], msgspec.Meta(max_length=12)]


class HoursSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The week (Monday first), holidays and exceptions, in ``timezone`` (default: the tenant's)."""

    timezone: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    weekly: Annotated[list[Annotated[list[IntervalSpec], msgspec.Meta(max_length=12)]],
                      msgspec.Meta(min_length=7, max_length=7)]  # fmt: skip
    holidays: Annotated[list[date], msgspec.Meta(max_length=400)] = []
    overrides: Annotated[list[OverrideSpec], msgspec.Meta(max_length=400)] = []


def _interval(spec: IntervalSpec) -> Interval:
    return Interval(time.fromisoformat(spec.start), time.fromisoformat(spec.end))


def to_calendar(spec: HoursSpec, default_timezone: str, *, field: str = "hours") -> Calendar:
    """The calendar of ``spec``; a contradiction (overlap, empty interval, unknown zone ...) is ``InvalidInput``."""
    try:
        weekly = WeeklyHours([[_interval(i) for i in day] for day in spec.weekly])
        return build_calendar(
            spec.timezone or default_timezone,
            weekly,
            [Holiday(day) for day in spec.holidays],
            [DayOverride(o.day, [_interval(i) for i in o.intervals]) for o in spec.overrides],
        )
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}", field=field) from exc


_decoder = msgspec.json.Decoder(HoursSpec)


def decode_hours(raw: str | bytes | None) -> HoursSpec | None:
    """The stored JSON (a ``jsonb`` column as asyncpg returns it) back into a spec."""
    if raw is None:
        return None
    return _decoder.decode(raw)


def hours_json(spec: HoursSpec | None) -> str | None:
    """A spec as the JSON stored in a ``jsonb`` column."""
    return None if spec is None else msgspec.json.encode(spec).decode()


def calendar_or_none(raw: Any, default_timezone: str) -> Calendar | None:
    """The calendar of a stored ``hours`` column, or None when it is NULL."""
    spec = decode_hours(raw)
    return None if spec is None else to_calendar(spec, default_timezone)
