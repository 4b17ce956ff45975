"""``atende bench tenants``: provisioning latency and the cost of re-running ``atende migrate``.

Runs in a scratch database (created and dropped) on the server of ``DATABASE_URL``, else the local default
port, else an embedded PostgreSQL (``bench.common.run_in_scratch``). Provisioning is measured one tenant at a time, as an operator
or a sign-up flow would do it, including the argon2id hash of the admin password.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.common import run_in_scratch
from saas.settings import Settings
from tenants import db
from tenants.migrations import migrate_all, migrate_public
from tenants.provisioning import create_tenant

__all__ = ["run_bench"]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _measure(database_url: str, tenants: int, concurrency: int) -> dict[str, Any]:
    await db.start(database_url, max_size=max(concurrency, 2))
    try:
        await migrate_public()
        timings = []
        for i in range(tenants):
            started = time.perf_counter()
            await create_tenant(f"bench{i:05d}", name=f"Bench {i}", admin_email=f"admin@bench{i}.example",
                                admin_password="bench password")  # fmt: skip
            timings.append(time.perf_counter() - started)
        report = await migrate_all(concurrency=concurrency)
        assert not report.failed and report.applied_count == 0, "tenants should already be up to date"
        return {
            "tenants": tenants,
            "provision_p50_s": round(statistics.median(timings), 4),
            "provision_p95_s": round(_percentile(timings, 0.95), 4),
            "migrate_all_s": round(report.seconds, 3),
            "migrate_concurrency": concurrency,
        }
    finally:
        await db.stop()


def run_bench(settings: Settings, *, tenants: int = 1000, concurrency: int = 8) -> dict[str, Any]:
    """Provision ``tenants`` tenants, then time ``migrate_all`` over them; returns the figures."""
    if tenants < 1:
        raise ValueError("--tenants must be at least 1")

    async def measure(database_url: str, _redis_url: str, _prefix: str) -> dict[str, Any]:
        return await _measure(database_url, tenants, concurrency)

    return run_in_scratch(settings, "tenants", measure)
