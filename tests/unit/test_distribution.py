"""Ticket distribution, exhaustively: manual, round-robin, least-busy, batches, capacity, fairness, offline return."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saas.queues.distribution import (
    AgentLoad,
    Presence,
    QueueState,
    Strategy,
    choose_agent,
    distribute,
    returned_on_offline,
)

STRATEGIES: list[Strategy] = ["manual", "round_robin", "least_busy"]
ASSIGNING: list[Strategy] = ["round_robin", "least_busy"]


def agent(
    user_id: int, presence: Presence = "online", cap: int = 2, open_: int = 0, last: float | None = None
) -> AgentLoad:
    return AgentLoad(user_id=user_id, presence=presence, capacity=cap, open_tickets=open_, last_assigned_at=last)


def team(*ids: int) -> list[AgentLoad]:
    return [agent(i) for i in ids]


def headroom(agents: Sequence[AgentLoad]) -> int:
    return sum(max(0, a.capacity - a.open_tickets) for a in agents if a.presence == "online")


# --- manual and nobody eligible -------------------------------------------------------------------------------


@pytest.mark.parametrize("cursor", [None, 1, 2, 99])
def test_manual_never_chooses(cursor: int | None) -> None:
    assert choose_agent(QueueState("manual", cursor), team(1, 2, 3)) is None


NOBODY = {
    "no agents": [],
    "all offline": [agent(1, "offline"), agent(2, "offline")],
    "all away": [agent(1, "away"), agent(2, "away")],
    "all full": [agent(1, open_=2), agent(2, cap=1, open_=1)],
    "over capacity": [agent(1, cap=1, open_=3)],
    "zero capacity": [agent(1, cap=0), agent(2, cap=0)],
    "mixed": [agent(1, "offline"), agent(2, "away"), agent(3, open_=2), agent(4, cap=0)],
}


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("agents", list(NOBODY.values()), ids=list(NOBODY))
@pytest.mark.parametrize("cursor", [None, 1])
def test_nobody_eligible_means_pending(strategy: Strategy, agents: list[AgentLoad], cursor: int | None) -> None:
    state = QueueState(strategy, cursor)
    assert choose_agent(state, agents) is None
    assert distribute(state, agents, 3) == ([None, None, None], state)


# --- round-robin ----------------------------------------------------------------------------------------------

ROUND_ROBIN: list[tuple[str, int | None, list[AgentLoad], int | None]] = [
    ("no cursor starts at lowest id", None, team(1, 2, 3), 1),
    ("next after cursor", 1, team(1, 2, 3), 2),
    ("next after middle", 2, team(1, 2, 3), 3),
    ("wraps around after highest", 3, team(1, 2, 3), 1),
    ("input order does not matter", 1, team(3, 1, 2), 2),
    ("sparse ids", 10, team(5, 10, 40), 40),
    ("skips offline", 1, [agent(1), agent(2, "offline"), agent(3)], 3),
    ("skips away", 1, [agent(1), agent(2, "away"), agent(3)], 3),
    ("skips full", 1, [agent(1), agent(2, open_=2), agent(3)], 3),
    ("skips over capacity", 1, [agent(1), agent(2, cap=1, open_=2), agent(3)], 3),
    ("skips zero capacity", 1, [agent(1), agent(2, cap=0), agent(3)], 3),
    ("skips ineligible while wrapping", 3, [agent(1, "offline"), agent(2), agent(3)], 2),
    ("cursor gone: next higher id", 2, team(1, 3, 5), 3),
    ("cursor gone: wraps when none higher", 9, team(1, 3, 5), 1),
    ("cursor gone: below everyone", 0, team(1, 3, 5), 1),
    ("only the cursor agent eligible gets it again", 2, [agent(1, "away"), agent(2), agent(3, cap=0)], 2),
    ("cursor agent offline is skipped", 2, [agent(1), agent(2, "offline"), agent(3)], 3),
    ("ignores load: full-ish agent still takes its turn", 1, [agent(1), agent(2, cap=9, open_=8), agent(3)], 2),
]


@pytest.mark.parametrize(
    ("cursor", "agents", "expected"), [case[1:] for case in ROUND_ROBIN], ids=[case[0] for case in ROUND_ROBIN]
)
def test_round_robin(cursor: int | None, agents: list[AgentLoad], expected: int | None) -> None:
    assert choose_agent(QueueState("round_robin", cursor), agents) == expected


def test_round_robin_batch_cycles_and_moves_cursor() -> None:
    agents = [agent(1, cap=1), agent(2, cap=1), agent(3, cap=1)]
    chosen, state = distribute(QueueState("round_robin", 2), agents, 4)
    assert chosen == [3, 1, 2, None]
    assert state == QueueState("round_robin", 2)


def test_round_robin_batch_matches_one_ticket_at_a_time() -> None:
    agents = [agent(1, cap=3), agent(2, cap=1), agent(4, "away"), agent(5, cap=2, open_=1), agent(7, cap=4)]
    state = QueueState("round_robin", 4)
    chosen, final = distribute(state, agents, 12)
    loads = {a.user_id: a for a in agents}
    expected: list[int | None] = []
    for _ in range(12):
        pick = choose_agent(state, list(loads.values()))
        expected.append(pick)
        if pick is not None:
            loads[pick] = agent(pick, cap=loads[pick].capacity, open_=loads[pick].open_tickets + 1)
            state = QueueState("round_robin", pick)
    assert chosen == expected
    assert final == state


# --- least-busy -----------------------------------------------------------------------------------------------

LEAST_BUSY: list[tuple[str, list[AgentLoad], int | None]] = [
    ("lowest ratio wins", [agent(1, cap=2, open_=1), agent(2, cap=4, open_=1)], 2),
    ("ratio, not raw count", [agent(1, cap=2, open_=1), agent(2, cap=10, open_=3)], 2),
    ("raw count loses to ratio", [agent(1, cap=1, open_=0), agent(2, cap=10, open_=1)], 1),
    ("idle agent first", [agent(1, cap=5, open_=1), agent(2, cap=1, open_=0)], 2),
    (
        "exact tie 1/3 vs 2/6: older last_assigned",
        [agent(1, cap=3, open_=1, last=20.0), agent(2, cap=6, open_=2, last=10.0)],
        2,
    ),
    ("tie: older last_assigned wins over lower id", [agent(1, last=5.0), agent(2, last=4.0)], 2),
    ("tie: never assigned counts as oldest", [agent(1, last=0.0), agent(2, last=None)], 2),
    ("tie: never assigned vs negative timestamp", [agent(1, last=-1e9), agent(2, last=None)], 2),
    ("tie: both never assigned, lowest id", [agent(2), agent(1)], 1),
    ("tie: same timestamp, lowest id", [agent(3, last=7.0), agent(2, last=7.0), agent(9, last=7.0)], 2),
    ("skips offline even if idle", [agent(1, "offline"), agent(2, open_=1)], 2),
    ("skips away even if idle", [agent(1, "away"), agent(2, open_=1)], 2),
    ("skips full", [agent(1, cap=1, open_=1, last=None), agent(2, cap=9, open_=8)], 2),
    ("skips zero capacity", [agent(1, cap=0), agent(2, cap=3, open_=2)], 2),
    (
        "lower ratio beats older assignment",
        [agent(1, cap=2, open_=1, last=None), agent(2, cap=2, open_=0, last=99.0)],
        2,
    ),
]


@pytest.mark.parametrize(
    ("agents", "expected"), [case[1:] for case in LEAST_BUSY], ids=[case[0] for case in LEAST_BUSY]
)
@pytest.mark.parametrize("cursor", [None, 1, 2])
def test_least_busy(agents: list[AgentLoad], expected: int | None, cursor: int | None) -> None:
    assert choose_agent(QueueState("least_busy", cursor), agents) == expected


def test_least_busy_batch_counts_its_own_picks_as_most_recent() -> None:
    # After two picks both agents sit at 1/2; agent 1 was picked first in this batch, so it has waited longer,
    # even though the snapshot's timestamps alone would favour agent 2.
    agents = [agent(1, cap=2, open_=0, last=100.0), agent(2, cap=4, open_=1, last=50.0)]
    chosen, state = distribute(QueueState("least_busy"), agents, 6)
    assert chosen == [1, 2, 1, 2, 2, None]
    assert state == QueueState("least_busy", 2)


# --- batches: capacity and fairness ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_zero_tickets(strategy: Strategy) -> None:
    state = QueueState(strategy, 1)
    assert distribute(state, team(1, 2), 0) == ([], state)


def test_negative_tickets_rejected() -> None:
    with pytest.raises(ValueError, match="tickets"):
        distribute(QueueState("round_robin"), team(1), -1)


def test_manual_batch_leaves_everything_pending() -> None:
    state = QueueState("manual", 3)
    assert distribute(state, team(1, 2, 3), 5) == ([None] * 5, state)


MIXED = [
    agent(1, cap=5, open_=1, last=30.0),
    agent(2, cap=1, last=None),
    agent(3, cap=0),
    agent(4, cap=8, open_=2, last=10.0),
    agent(5, cap=3, last=20.0),
]


@pytest.mark.parametrize("strategy", ASSIGNING)
@pytest.mark.parametrize("cursor", [None, 1, 3, 5, 42])
def test_hundred_tickets_over_mixed_capacities(strategy: Strategy, cursor: int | None) -> None:
    chosen, _ = distribute(QueueState(strategy, cursor), MIXED, 100)
    room = headroom(MIXED)
    assert room == 14
    assert all(pick is not None for pick in chosen[:room])
    assert chosen[room:] == [None] * (100 - room)
    counts = Counter(chosen[:room])
    # Everyone here is online, so the room filled up is exactly each agent's spare capacity, and never more.
    assert {a.user_id: counts[a.user_id] for a in MIXED} == {1: 4, 2: 1, 3: 0, 4: 6, 5: 3}


@pytest.mark.parametrize("strategy", ASSIGNING)
@pytest.mark.parametrize("tickets", [1, 4, 5, 99, 100, 101, 124, 125])
def test_equal_capacities_are_fair(strategy: Strategy, tickets: int) -> None:
    agents = [agent(i, cap=25, last=float(10 - i)) for i in (2, 4, 6, 8, 10)]
    chosen, _ = distribute(QueueState(strategy), agents, tickets)
    counts = Counter(chosen)
    assert None not in counts
    per_agent = [counts[a.user_id] for a in agents]
    assert sum(per_agent) == tickets
    assert max(per_agent) - min(per_agent) <= 1


def test_least_busy_fills_toward_equal_ratios() -> None:
    agents = [agent(1, cap=2), agent(2, cap=4), agent(3, cap=8)]
    chosen, _ = distribute(QueueState("least_busy"), agents, 7)
    counts = Counter(chosen)
    assert [counts[1], counts[2], counts[3]] == [1, 2, 4]


# --- bad input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: agent(1, cap=-1), "capacity"),
        (lambda: agent(1, open_=-1), "open_tickets"),
        (lambda: AgentLoad(1, "busy", 1, 0, None), "presence"),  # type: ignore[arg-type]
        (lambda: QueueState("random"), "strategy"),  # type: ignore[arg-type]
    ],
    ids=["negative capacity", "negative open tickets", "unknown presence", "unknown strategy"],
)
def test_invalid_values_rejected(build: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_duplicate_agents_rejected(strategy: Strategy) -> None:
    with pytest.raises(ValueError, match=r"duplicate user_id.*\[2\]"):
        choose_agent(QueueState(strategy), team(1, 2, 2))
    with pytest.raises(ValueError, match="duplicate"):
        distribute(QueueState(strategy), team(1, 2, 2), 1)


# --- returning tickets when an agent goes offline -------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "presence", "open_ids", "expected"),
    [
        (True, "offline", [7, 3, 9], [7, 3, 9]),
        (True, "offline", [], []),
        (True, "away", [7, 3], []),
        (True, "online", [7, 3], []),
        (False, "offline", [7, 3], []),
        (False, "away", [7], []),
        (False, "online", [7], []),
    ],
)
def test_returned_on_offline(option: bool, presence: str, open_ids: list[int], expected: list[int]) -> None:
    returned = returned_on_offline(option, presence, open_ids)
    assert returned == expected
    assert returned is not open_ids


# --- properties -----------------------------------------------------------------------------------------------

agent_loads = st.builds(
    AgentLoad,
    user_id=st.integers(1, 50),
    presence=st.sampled_from(["online", "away", "offline"]),
    capacity=st.integers(0, 5),
    open_tickets=st.integers(0, 6),
    last_assigned_at=st.none() | st.floats(0, 1e9, allow_nan=False),
)


@settings(max_examples=200, database=None, deadline=None)
@given(
    agents=st.lists(agent_loads, max_size=8, unique_by=lambda a: a.user_id),
    strategy=st.sampled_from(ASSIGNING),
    cursor=st.none() | st.integers(0, 51),
    tickets=st.integers(0, 40),
)
def test_capacity_never_exceeded(agents: list[AgentLoad], strategy: Strategy, cursor: int | None, tickets: int) -> None:
    chosen, state = distribute(QueueState(strategy, cursor), agents, tickets)
    assert len(chosen) == tickets
    counts = Counter(pick for pick in chosen if pick is not None)
    by_id = {a.user_id: a for a in agents}
    for user_id, count in counts.items():
        a = by_id[user_id]
        assert a.presence == "online"
        assert a.open_tickets + count <= a.capacity
    # Work-conserving: a ticket stays pending only once every eligible seat is taken, and then all later ones do.
    assigned = min(tickets, headroom(agents))
    assert chosen == [*chosen[:assigned], *[None] * (tickets - assigned)]
    assert None not in chosen[:assigned]
    last = next((pick for pick in reversed(chosen) if pick is not None), cursor)
    assert state == QueueState(strategy, last)


@settings(max_examples=200, database=None, deadline=None)
@given(
    ids=st.lists(st.integers(1, 1000), min_size=1, max_size=10, unique=True),
    cursor=st.none() | st.integers(0, 1001),
    tickets=st.integers(0, 200),
)
def test_round_robin_is_fair(ids: list[int], cursor: int | None, tickets: int) -> None:
    agents = [agent(i, cap=tickets + 1) for i in ids]
    chosen, _ = distribute(QueueState("round_robin", cursor), agents, tickets)
    counts = Counter(chosen)
    low, high = tickets // len(ids), -(-tickets // len(ids))
    assert None not in counts
    assert all(low <= counts[i] <= high for i in ids)
