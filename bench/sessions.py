"""``atende bench sessions``: many simulated WhatsApp sessions on Ray session hosts — memory and recovery.

Creates ``sessions`` connections (spread over tenants) in a scratch database, runs the real supervisor and
session host actors on a local Ray, waits until every session is CONNECTED, sums the resident memory of
the host processes, then kills one host and measures, per session it carried, the time until that
session was CONNECTED again on the restarted host.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime
from typing import Any

import psutil
import ray

from bench.common import free_port, run_in_scratch, spawn, stop, wait_until
from saas.connections.service import create_connection
from saas.settings import Settings
from supervisor.actors import NAMESPACE, get_or_create_supervisor
from supervisor.host import HostConfig
from supervisor.simulator.client import SimulatorClient
from tenants import db
from tenants.context import tenant_context
from tenants.migrations import migrate_public
from tenants.provisioning import create_tenant

MASTER_KEY = "benchmark-master-key-" + "k" * 24  # a scratch database's data keys die with it

__all__ = ["run_sessions_bench"]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


async def _measure(database_url: str, redis_url: str, prefix: str, *, sessions: int, per_host: int,
                   tenants: int) -> dict[str, Any]:  # fmt: skip
    await db.start(database_url, max_size=4)
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    simulator = spawn(["simulator", "--port", str(sim_port), "--auto-pair"], {"ATENDE_LOG_LEVEL": "WARNING"})
    supervisor: Any = None
    try:
        await migrate_public()
        per_tenant = math.ceil(sessions / tenants)
        made = 0
        for t in range(tenants):
            info = await create_tenant(f"sess{t:03d}", name=f"Sessions {t}", admin_email=f"admin@sess{t}.example",
                                       admin_password="bench password", plan="enterprise")  # fmt: skip
            async with tenant_context(tenant_id=info.id) as session:
                for _ in range(min(per_tenant, sessions - made)):
                    await create_connection(session, name=f"n{made}", provider="simulator",
                                            business_number=f"+55119{made:08d}", endpoint=sim_url)  # fmt: skip
                    made += 1
        async with SimulatorClient(sim_url) as sim:
            await wait_until(sim.health, 30, "the simulator")
        config = HostConfig(master_key=MASTER_KEY, name="unused", database_url=database_url, redis_url=redis_url, redis_prefix=prefix,
                            simulator_url=sim_url, db_pool_size=10)  # fmt: skip
        supervisor = get_or_create_supervisor(config, per_host)
        started = time.monotonic()
        await supervisor.ensure_running.remote()

        async def all_connected() -> bool:
            count = await db.pool().fetchval("SELECT count(*) FROM public.session_registry WHERE state = 'CONNECTED'")
            return int(count) == sessions

        await wait_until(all_connected, 300, f"{sessions} sessions CONNECTED")
        connect_all_s = time.monotonic() - started
        await asyncio.sleep(2.0)  # let allocations settle
        names: list[str] = await supervisor.host_names.remote()
        pids = {name: await ray.get_actor(name, namespace=NAMESPACE).pid.remote() for name in names}
        rss = {name: psutil.Process(pid).memory_info().rss for name, pid in pids.items()}

        victim = names[0]
        carried = [
            r["id"] for r in await db.pool().fetch("SELECT id FROM public.session_registry WHERE host = $1", victim)
        ]
        killed_at = datetime.now().astimezone()
        kill_clock = time.monotonic()
        ray.kill(ray.get_actor(victim, namespace=NAMESPACE), no_restart=False)

        async def recovered() -> list[float] | None:
            rows = await db.pool().fetch(
                "SELECT updated_at FROM public.session_registry WHERE id = ANY($1::bigint[]) AND state = 'CONNECTED'"
                " AND updated_at > $2",
                carried, killed_at,
            )  # fmt: skip
            if len(rows) < len(carried):
                return None
            return [(r["updated_at"] - killed_at).total_seconds() for r in rows]

        old_pid = pids[victim]

        async def host_back() -> bool:
            try:
                handle: Any = ray.get_actor(victim, namespace=NAMESPACE)
                pid: int = await asyncio.wait_for(handle.pid.remote(), 5)
            except Exception:
                return False
            return bool(pid != old_pid)

        await wait_until(host_back, 60, "the killed host to restart")
        host_back_s = time.monotonic() - kill_clock
        times = await wait_until(recovered, 120, "the killed host's sessions CONNECTED again")
        return {
            "sessions": sessions,
            "hosts": len(names),
            "rss_mb_total": round(sum(rss.values()) / 2**20, 1),
            "mb_per_session": round(sum(rss.values()) / 2**20 / sessions, 3),
            "recover_p50_s": round(_pct(times, 0.5), 3),
            "recover_p95_s": round(_pct(times, 0.95), 3),
            "recovered_sessions": len(carried),
            "recover_wall_s": round(time.monotonic() - kill_clock, 3),
            "host_restart_s": round(host_back_s, 3),
            "connect_all_s": round(connect_all_s, 2),
        }
    finally:
        if supervisor is not None:
            try:
                await asyncio.wait_for(supervisor.shutdown_hosts.remote(), 60)
            finally:
                ray.kill(supervisor, no_restart=True)
        stop(simulator)
        await db.stop()


def run_sessions_bench(settings: Settings, *, sessions: int = 1000, per_host: int = 250,
                       tenants: int = 10) -> dict[str, Any]:  # fmt: skip
    if sessions < 1 or per_host < 1 or tenants < 1:
        raise ValueError("sessions, per-host and tenants must be at least 1")

    async def measure(database_url: str, redis_url: str, prefix: str) -> dict[str, Any]:
        return await _measure(database_url, redis_url, prefix, sessions=sessions, per_host=per_host, tenants=tenants)

    return run_in_scratch(settings, "sessions", measure, with_ray=True)
