from __future__ import annotations

from collections import Counter

import pytest

from supervisor.placement import dedicated_host, place, shared_host
from supervisor.registry import SessionSpec


def _spec(i: int, *, tenant: int = 1, host: str | None = None, dedicated: bool = False) -> SessionSpec:
    return SessionSpec(registry_id=i, tenant_id=tenant, connection_id=i, provider="simulator", host=host,
                       dedicated_host=dedicated)  # fmt: skip


@pytest.mark.parametrize(("sessions", "per_host"), [(0, 5), (1, 5), (5, 5), (6, 5), (1000, 250), (999, 250), (7, 1)])
def test_spreads_evenly_within_capacity(sessions: int, per_host: int) -> None:
    placement = place([_spec(i) for i in range(sessions)], per_host)
    load = Counter(placement.values())
    assert len(placement) == sessions
    assert all(n <= per_host for n in load.values())
    if sessions:
        assert max(load.values()) - min(load.values()) <= 1


def test_sticky_sessions_do_not_move() -> None:
    first = place([_spec(i) for i in range(10)], 4)
    again = place([_spec(i, host=first[i]) for i in range(10)], 4)
    assert again == first


def test_sessions_of_a_vanished_host_are_rehomed() -> None:
    specs = [_spec(i, host=shared_host(7)) for i in range(3)]
    assert set(place(specs, 10).values()) == {shared_host(0)}


def test_overfull_host_sheds_sessions() -> None:
    specs = [_spec(i, host=shared_host(0)) for i in range(6)]
    load = Counter(place(specs, 3).values())
    assert load == {shared_host(0): 3, shared_host(1): 3}


def test_dedicated_tenants_get_their_own_host() -> None:
    specs = [_spec(1, tenant=9, dedicated=True), _spec(2, tenant=9, dedicated=True), _spec(3, tenant=1)]
    placement = place(specs, 100)
    assert placement[1] == placement[2] == dedicated_host(9)
    assert placement[3] == shared_host(0)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        place([], 0)
