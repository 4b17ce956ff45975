"""Ticket rules with no I/O: priorities, the order of the inbox, and whether a returning customer reopens a ticket.

Decisions, stated once so the SQL and this module agree:

* **Priorities** are stored as their rank, ``0`` (low) to ``3`` (urgent), so the database sorts them as numbers.
* **Inbox order** is ``ORDER BY priority DESC, waiting_since ASC NULLS LAST, last_activity DESC, id DESC``: higher
  priority first; within one, the customers waiting for an answer before the others, the longest-waiting first;
  then the most recently active; ties by the newest ticket. ``inbox_sort_key`` is that order for ``sorted``, on
  exact microseconds (PostgreSQL's ``timestamptz`` resolution), so an integration test can compare both.
* **Reopening.** In ``window`` mode a customer who writes again at most ``window_s`` seconds after their last
  ticket closed gets that ticket back (the boundary is inclusive); ``window_s == 0`` never reopens and ``new`` mode
  always opens a new ticket. A ``closed_at`` later than ``now`` (clock skew between hosts) counts as just closed.
* All datetimes must be timezone-aware: a naive one is a bug upstream and raises ``ValueError``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

__all__ = [
    "PRIORITIES",
    "InboxKey",
    "ReopenMode",
    "inbox_sort_key",
    "priority_name",
    "priority_rank",
    "reopen_decision",
]

PRIORITIES = ("low", "normal", "high", "urgent")
"""Priority names by rank: ``PRIORITIES[rank]``."""

ReopenMode = Literal["window", "new"]
InboxKey = tuple[int, int, int, int, int]

_REOPEN_MODES: frozenset[str] = frozenset(get_args(ReopenMode))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def priority_rank(name: str) -> int:
    """The rank of a priority name, 0 (low) to 3 (urgent)."""
    try:
        return PRIORITIES.index(name)
    except ValueError:
        raise ValueError(f"unknown priority {name!r}; use one of {', '.join(PRIORITIES)}") from None


def priority_name(rank: int) -> str:
    """The name of a priority rank."""
    if not 0 <= rank < len(PRIORITIES):
        raise ValueError(f"unknown priority rank {rank}; ranks are 0 ({PRIORITIES[0]}) to 3 ({PRIORITIES[-1]})")
    return PRIORITIES[rank]


def _micros(at: datetime, name: str) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {at.isoformat()}")
    return (at - _EPOCH) // _MICROSECOND


def inbox_sort_key(priority: int, waiting_since: datetime | None, last_activity: datetime, ticket_id: int) -> InboxKey:
    """The key that sorts tickets in inbox order (see the module docstring for the matching ``ORDER BY``)."""
    priority_name(priority)  # rejects an unknown rank
    activity = _micros(last_activity, "last_activity")
    if waiting_since is None:
        return (-priority, 1, 0, -activity, -ticket_id)
    return (-priority, 0, _micros(waiting_since, "waiting_since"), -activity, -ticket_id)


def reopen_decision(
    mode: ReopenMode, window_s: int, closed_at: datetime | None, now: datetime
) -> Literal["reopen", "new"]:
    """Whether a customer writing at ``now`` reopens their last ticket (closed at ``closed_at``) or gets a new one."""
    if mode not in _REOPEN_MODES:
        raise ValueError(f"unknown reopen mode {mode!r}; use 'window' or 'new'")
    if window_s < 0:
        raise ValueError(f"window_s must be >= 0, got {window_s}")
    current = _micros(now, "now")
    if closed_at is None:
        return "new"
    elapsed = max(0, current - _micros(closed_at, "closed_at"))
    if mode == "window" and window_s > 0 and elapsed <= window_s * 1_000_000:
        return "reopen"
    return "new"
