"""Ticket rules: priority names and ranks, the inbox order against a hand-written expectation, reopen boundaries."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saas.tickets.rules import (
    PRIORITIES,
    ReopenMode,
    inbox_sort_key,
    priority_name,
    priority_rank,
    reopen_decision,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# --- priorities -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "rank"), [("low", 0), ("normal", 1), ("high", 2), ("urgent", 3)])
def test_priority_rank_and_name(name: str, rank: int) -> None:
    assert priority_rank(name) == rank
    assert priority_name(rank) == name
    assert PRIORITIES[rank] == name


@pytest.mark.parametrize("name", ["", "Low", "URGENT", "medium", " normal", "0"])
def test_priority_rank_rejects_unknown(name: str) -> None:
    with pytest.raises(ValueError, match="unknown priority"):
        priority_rank(name)


@pytest.mark.parametrize("rank", [-1, 4, 99])
def test_priority_name_rejects_unknown(rank: int) -> None:
    with pytest.raises(ValueError, match="unknown priority rank"):
        priority_name(rank)


# --- inbox order ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ticket:
    id: int
    priority: int
    waiting_since: datetime | None
    last_activity: datetime

    @property
    def key(self) -> tuple[int, int, int, int, int]:
        return inbox_sort_key(self.priority, self.waiting_since, self.last_activity, self.id)


TICKETS = [
    Ticket(1, 1, None, at(10)),
    Ticket(2, 1, at(5), at(6)),
    Ticket(3, 3, None, at(1)),
    Ticket(4, 1, at(2), at(30)),
    Ticket(5, 0, at(0), at(0)),
    Ticket(6, 2, None, at(50)),
    Ticket(7, 1, None, at(40)),
    Ticket(8, 3, at(20), at(20)),
    Ticket(9, 1, at(5), at(6)),  # ties ticket 2 on waiting and activity: higher id first
    Ticket(10, 1, at(5), at(9)),  # same waiting as 2 and 9, more recent activity first
    Ticket(11, 1, None, at(10)),  # ties ticket 1: higher id first
    Ticket(12, 2, at(45), at(46)),
    Ticket(13, 0, None, at(60)),
    Ticket(14, 3, at(15), at(16)),
    Ticket(15, 1, at(5), at(6) + timedelta(microseconds=1)),  # one microsecond more recent than 2 and 9
]

EXPECTED = [
    14, 8, 3,  # urgent: waiting longest first, then the one not waiting
    12, 6,  # high
    4, 10, 15, 9, 2, 7, 11, 1,  # normal: waiting (oldest first, then activity, then id), then by activity, then id
    5, 13,  # low
]  # fmt: skip


def test_inbox_order_by_hand() -> None:
    assert [t.id for t in sorted(TICKETS, key=lambda t: t.key)] == EXPECTED


def test_inbox_order_does_not_depend_on_input_order() -> None:
    for shift in range(len(TICKETS)):
        rotated = TICKETS[shift:] + TICKETS[:shift]
        for items in (rotated, rotated[::-1]):
            assert [t.id for t in sorted(items, key=lambda t: t.key)] == EXPECTED


def test_inbox_order_compares_instants_not_wall_clocks() -> None:
    sao_paulo = timezone(timedelta(hours=-3))
    # 09:30 in São Paulo is 12:30 UTC: later than 12:10 UTC although its wall clock reads earlier.
    waiting_sp = Ticket(1, 1, datetime(2026, 3, 2, 9, 30, tzinfo=sao_paulo), at(40))
    waiting_utc = Ticket(2, 1, at(10), at(40))
    assert [t.id for t in sorted([waiting_sp, waiting_utc], key=lambda t: t.key)] == [2, 1]
    assert inbox_sort_key(1, None, at(30), 5) == inbox_sort_key(1, None, at(30).astimezone(sao_paulo), 5)


def test_inbox_sort_key_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown priority rank"):
        inbox_sort_key(4, None, T0, 1)
    with pytest.raises(ValueError, match="last_activity must be timezone-aware"):
        inbox_sort_key(1, None, T0.replace(tzinfo=None), 1)
    with pytest.raises(ValueError, match="waiting_since must be timezone-aware"):
        inbox_sort_key(1, T0.replace(tzinfo=None), T0, 1)


def rule_order(a: Ticket, b: Ticket) -> int:
    """The inbox rules written out one by one: negative when ``a`` comes first."""
    if a.priority != b.priority:
        return -1 if a.priority > b.priority else 1
    if (a.waiting_since is None) != (b.waiting_since is None):
        return -1 if a.waiting_since is not None else 1
    if a.waiting_since is not None and b.waiting_since is not None and a.waiting_since != b.waiting_since:
        return -1 if a.waiting_since < b.waiting_since else 1
    if a.last_activity != b.last_activity:
        return -1 if a.last_activity > b.last_activity else 1
    if a.id != b.id:
        return -1 if a.id > b.id else 1
    return 0


moments = st.integers(0, 6).map(lambda n: T0 + timedelta(seconds=n)) | st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
tickets = st.lists(
    st.builds(Ticket, st.integers(1, 10_000), st.integers(0, 3), st.none() | moments, moments),
    max_size=30,
    unique_by=lambda t: t.id,
)


@settings(max_examples=300, deadline=None)
@given(tickets)
def test_inbox_order_is_the_rules(items: list[Ticket]) -> None:
    by_key = sorted(items, key=lambda t: t.key)
    assert by_key == sorted(items, key=functools.cmp_to_key(rule_order))
    # a total order: distinct tickets never tie, and the key agrees with the rules pairwise
    assert len({t.key for t in items}) == len(items)
    for a in items:
        for b in items:
            assert (a.key < b.key) == (rule_order(a, b) < 0)


# --- reopen ---------------------------------------------------------------------------------------------------

WINDOW = 3600


@pytest.mark.parametrize(
    ("mode", "window_s", "closed_at", "now", "expected"),
    [
        ("window", WINDOW, T0, T0 + timedelta(seconds=WINDOW), "reopen"),  # exactly the window: inclusive
        ("window", WINDOW, T0, T0 + timedelta(seconds=WINDOW, microseconds=1), "new"),
        ("window", WINDOW, T0, T0 + timedelta(seconds=WINDOW - 1), "reopen"),
        ("window", WINDOW, T0, T0 + timedelta(seconds=WINDOW + 1), "new"),
        ("window", WINDOW, T0, T0, "reopen"),
        ("window", WINDOW, T0, T0 + timedelta(days=30), "new"),
        ("window", WINDOW, T0 + timedelta(seconds=5), T0, "reopen"),  # closed "in the future": just closed
        ("window", WINDOW, T0 + timedelta(days=2), T0, "reopen"),
        ("window", 1, T0, T0 + timedelta(seconds=1), "reopen"),
        ("window", 1, T0, T0 + timedelta(seconds=2), "new"),
        ("window", 0, T0, T0, "new"),  # 0 never reopens
        ("window", 0, T0 + timedelta(seconds=5), T0, "new"),
        ("window", WINDOW, None, T0, "new"),  # no previous ticket
        ("new", WINDOW, T0, T0, "new"),
        ("new", WINDOW, T0, T0 + timedelta(seconds=1), "new"),
        ("new", 0, None, T0, "new"),
    ],
)
def test_reopen_decision(
    mode: ReopenMode, window_s: int, closed_at: datetime | None, now: datetime, expected: str
) -> None:
    assert reopen_decision(mode, window_s, closed_at, now) == expected


def test_reopen_decision_compares_instants_across_offsets() -> None:
    sao_paulo = timezone(timedelta(hours=-3))
    closed = datetime(2026, 3, 2, 9, 0, tzinfo=sao_paulo)  # 12:00 UTC
    assert reopen_decision("window", WINDOW, closed, T0 + timedelta(seconds=WINDOW)) == "reopen"
    assert reopen_decision("window", WINDOW, closed, T0 + timedelta(seconds=WINDOW + 1)) == "new"


@pytest.mark.parametrize("mode", ["window", "new"])
def test_reopen_decision_rejects_naive_datetimes(mode: ReopenMode) -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        reopen_decision(mode, WINDOW, T0, T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        reopen_decision(mode, WINDOW, None, T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="closed_at must be timezone-aware"):
        reopen_decision(mode, WINDOW, T0.replace(tzinfo=None), T0)


def test_reopen_decision_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="unknown reopen mode"):
        reopen_decision("always", WINDOW, T0, T0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window_s must be >= 0"):
        reopen_decision("window", -1, T0, T0)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10 * 86400), st.integers(-86400, 20 * 86400))
def test_reopen_is_exactly_the_window(window_s: int, elapsed_s: int) -> None:
    result = reopen_decision("window", window_s, T0, T0 + timedelta(seconds=elapsed_s))
    assert result == ("reopen" if window_s > 0 and elapsed_s <= window_s else "new")
    assert reopen_decision("new", window_s, T0, T0 + timedelta(seconds=elapsed_s)) == "new"
