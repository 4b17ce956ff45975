"""Liveness, readiness and Prometheus metrics for operators and orchestrators."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, MediaType, Request, Response, get
from litestar.di import NamedDependency
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from saas.errors import problem
from saas.runtime import Runtime

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
    async def metrics(self) -> Response[bytes]:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
