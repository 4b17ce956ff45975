"""Where sessions run (a pure function): sticky placement over shared hosts, dedicated hosts per tenant."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from supervisor.registry import SessionSpec

__all__ = ["dedicated_host", "place", "shared_host"]


def shared_host(index: int) -> str:
    return f"atende-host-{index}"


def dedicated_host(tenant_id: int) -> str:
    return f"atende-host-t{tenant_id}"


def place(specs: Sequence[SessionSpec], sessions_per_host: int) -> dict[int, str]:
    """Assign every session a host name.

    A tenant with a dedicated host gets its own. Shared sessions stay where they are while their host still
    exists and has room (moving a live session costs a reconnect), the rest go to the least loaded of the
    ``ceil(shared / sessions_per_host)`` shared hosts.
    """
    if sessions_per_host < 1:
        raise ValueError("sessions_per_host must be at least 1")
    placement: dict[int, str] = {}
    shared = [s for s in specs if not s.dedicated_host]
    for spec in specs:
        if spec.dedicated_host:
            placement[spec.registry_id] = dedicated_host(spec.tenant_id)
    hosts = [shared_host(i) for i in range(max(1, math.ceil(len(shared) / sessions_per_host)))]
    load: Counter[str] = Counter()
    homeless = []
    for spec in shared:
        if spec.host in hosts and load[spec.host] < sessions_per_host:
            placement[spec.registry_id] = spec.host
            load[spec.host] += 1
        else:
            homeless.append(spec)
    for spec in homeless:
        host = min(hosts, key=lambda h: (load[h], hosts.index(h)))
        placement[spec.registry_id] = host
        load[host] += 1
    return placement
