"""Which agent gets a queue's next ticket: the pure decision, with no I/O.

The caller reads a snapshot of the queue's agents (presence, capacity, open tickets, last assignment) under row
locks, asks this module, and persists the answer inside the same transaction. So the functions here only have to
be deterministic and correct for one snapshot; concurrency is the caller's job.

Strategies:

* ``manual``: nobody is chosen; the ticket waits in pending until an agent accepts it.
* ``round_robin``: the next eligible agent after the queue's cursor, in ascending ``user_id`` order, wrapping
  around. The cursor is a user id, not a position, so agents joining or leaving the queue never shift the turn.
* ``least_busy``: the eligible agent with the lowest ``open_tickets / capacity``, then the one who waited longest
  since an assignment (never assigned counts as longest), then the lowest ``user_id``.

An agent is eligible only when ``online`` and below capacity; capacity 0 takes an agent out of distribution
without removing them from the queue.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Literal, get_args

__all__ = [
    "AgentLoad",
    "Presence",
    "QueueState",
    "Strategy",
    "choose_agent",
    "distribute",
    "returned_on_offline",
]

Presence = Literal["online", "away", "offline"]
Strategy = Literal["manual", "round_robin", "least_busy"]

_PRESENCES: frozenset[str] = frozenset(get_args(Presence))
_STRATEGIES: frozenset[str] = frozenset(get_args(Strategy))

# Sorts "when was this agent last given a ticket": (0, timestamp) for the snapshot, (1, n) for the n-th pick of a
# batch, so a pick made inside ``distribute`` is always more recent than anything in the snapshot.
_Recency = tuple[int, float]


@dataclass(frozen=True, slots=True)
class AgentLoad:
    """One queue member as the distributor sees them at snapshot time."""

    user_id: int
    presence: Presence
    capacity: int  # max open tickets; 0 excludes the agent from distribution
    open_tickets: int
    last_assigned_at: float | None  # epoch seconds; None if never assigned

    def __post_init__(self) -> None:
        # A bad snapshot would silently skew distribution, so it fails loudly here instead.
        if self.presence not in _PRESENCES:
            raise ValueError(f"unknown presence {self.presence!r}")
        if self.capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {self.capacity}")
        if self.open_tickets < 0:
            raise ValueError(f"open_tickets must be >= 0, got {self.open_tickets}")

    @property
    def eligible(self) -> bool:
        """Online and below capacity (which also rules out capacity 0)."""
        return self.presence == "online" and self.open_tickets < self.capacity


@dataclass(frozen=True, slots=True)
class QueueState:
    """The queue's distribution settings plus round-robin's cursor (the last agent given a ticket)."""

    strategy: Strategy
    last_assigned_user_id: int | None = None

    def __post_init__(self) -> None:
        if self.strategy not in _STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}")


def choose_agent(state: QueueState, agents: Sequence[AgentLoad]) -> int | None:
    """The ``user_id`` to assign the queue's next ticket to, or None when it should stay pending."""
    return _choose(state, _check_unique(agents), _snapshot_recency)


def distribute(state: QueueState, agents: Sequence[AgentLoad], tickets: int) -> tuple[list[int | None], QueueState]:
    """Assign ``tickets`` new tickets one after another; returns the agent per ticket and the queue's new state.

    Each pick sees the loads left by the previous ones, so capacity is never exceeded and a batch is distributed
    exactly as the same tickets arriving one by one would be. A ticket nobody can take gets None (it stays
    pending); round-robin's cursor only moves on a real assignment.
    """
    if tickets < 0:
        raise ValueError(f"tickets must be >= 0, got {tickets}")
    loads = {agent.user_id: agent for agent in _check_unique(agents)}
    batch_order: dict[int, int] = {}

    def recency(agent: AgentLoad) -> _Recency:
        picked = batch_order.get(agent.user_id)
        return _snapshot_recency(agent) if picked is None else (1, picked)

    chosen: list[int | None] = []
    for n in range(tickets):
        user_id = _choose(state, loads.values(), recency)
        chosen.append(user_id)
        if user_id is None:
            continue
        loads[user_id] = replace(loads[user_id], open_tickets=loads[user_id].open_tickets + 1)
        batch_order[user_id] = n
        state = replace(state, last_assigned_user_id=user_id)
    return chosen, state


def returned_on_offline(return_on_offline: bool, presence: str, open_ticket_ids: Sequence[int]) -> list[int]:
    """Tickets that go back to the queue because their agent went offline and the queue asks for that.

    ``away`` keeps the tickets: it is a short break, and bouncing conversations would confuse customers.
    """
    if return_on_offline and presence == "offline":
        return list(open_ticket_ids)
    return []


def _choose(state: QueueState, agents: Iterable[AgentLoad], recency: Callable[[AgentLoad], _Recency]) -> int | None:
    if state.strategy == "manual":
        return None
    eligible = sorted((agent for agent in agents if agent.eligible), key=lambda agent: agent.user_id)
    if not eligible:
        return None
    if state.strategy == "round_robin":
        cursor = state.last_assigned_user_id
        if cursor is not None:
            # The first id above the cursor, even if the cursor's agent has since left the queue.
            for agent in eligible:
                if agent.user_id > cursor:
                    return agent.user_id
        return eligible[0].user_id
    # least_busy: Fraction keeps ratios exact, so 1/3 and 2/6 really tie instead of differing in the last bit.
    best = min(
        eligible,
        key=lambda agent: (Fraction(agent.open_tickets, agent.capacity), recency(agent), agent.user_id),
    )
    return best.user_id


def _snapshot_recency(agent: AgentLoad) -> _Recency:
    return (0, -math.inf if agent.last_assigned_at is None else agent.last_assigned_at)


def _check_unique(agents: Sequence[AgentLoad]) -> Sequence[AgentLoad]:
    # Two rows for one agent would double their share; that is a caller bug worth surfacing.
    ids = [agent.user_id for agent in agents]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate user_id in agents: {sorted(i for i in set(ids) if ids.count(i) > 1)}")
    return agents
