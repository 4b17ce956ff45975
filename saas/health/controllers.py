"""Liveness, readiness and Prometheus metrics for operators and orchestrators."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, MediaType, Request, Response, get
from litestar.di import NamedDependency
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from saas.errors import problem
from saas.runtime import Runtime
from supervisor.metrics import read_metrics

__all__ = ["HealthController"]

READY_TIMEOUT_S = 2.0


async def _check(name: str, probe: Any) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, READY_TIMEOUT_S)
    except TimeoutError:
        return name, "timeout"
    except Exception as exc:
        return name, f"error: {type(exc).__name__}"
    return name, "ok"


class HealthController(Controller):
    include_in_schema = True
    tags = ["operations"]

    @get("/healthz", summary="Liveness: the process answers", cache=False)
    async def healthz(self, runtime: NamedDependency[Runtime]) -> dict[str, str]:
        return {"status": "ok", "release": runtime.settings.release}

    @get("/readyz", summary="Readiness: PostgreSQL and Redis answer", cache=False)
    async def readyz(
        self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
    ) -> Response[dict[str, Any]]:
        checks = dict(
            await asyncio.gather(_check("postgres", runtime.ping_db()), _check("redis", runtime.ping_redis()))
        )
        if all(v == "ok" for v in checks.values()):
            return Response({"status": "ready", "checks": checks})
        failing = ", ".join(k for k, v in checks.items() if v != "ok")
        return problem(request, status=503, code="not_ready", title="Not ready", detail=f"unavailable: {failing}",
                       checks=checks)  # fmt: skip

    @get("/metrics", summary="Prometheus metrics", media_type=MediaType.TEXT, include_in_schema=False)
    async def metrics(self, runtime: NamedDependency[Runtime]) -> Response[bytes]:
        """This process's HTTP metrics, plus what sessions and routers flushed to Redis, plus stream depths."""
        text = generate_latest(REGISTRY).decode()
        try:
            text += await read_metrics(runtime.redis_client, runtime.keys.prefix)
            text += await _stream_metrics(runtime)
        except Exception as exc:  # a scrape must still answer when Redis is down
            text += f"# redis metrics unavailable: {type(exc).__name__}\n"
        return Response(text.encode(), media_type=CONTENT_TYPE_LATEST)


async def _stream_metrics(runtime: Runtime) -> str:
    lines = [
        "# HELP atende_stream_length Entries in an inbound stream shard.",
        "# TYPE atende_stream_length gauge",
    ]
    pending_lines = [
        "# HELP atende_stream_pending Entries delivered to the router but not yet acknowledged.",
        "# TYPE atende_stream_pending gauge",
    ]
    lag_lines = [
        "# HELP atende_stream_lag Entries not yet delivered to the router (Redis >= 7).",
        "# TYPE atende_stream_lag gauge",
    ]
    redis = runtime.redis_client
    for shard in range(runtime.keys.shards):
        key = runtime.keys.inbound(shard)
        label = f'shard="{shard}"'
        lines.append(f"atende_stream_length{{{label}}} {await redis.xlen(key)}")
        groups: Any = await redis.xinfo_groups(key) if await redis.exists(key) else []
        for group in groups:
            if group["name"] in (b"router", "router"):
                pending_lines.append(f"atende_stream_pending{{{label}}} {group['pending']}")
                if group.get("lag") is not None:
                    lag_lines.append(f"atende_stream_lag{{{label}}} {group['lag']}")
    return "\n".join([*lines, *pending_lines, *lag_lines]) + "\n"
