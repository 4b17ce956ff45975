"""The API skeleton on real PostgreSQL and Redis: health, readiness, errors, OpenAPI, metrics."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, get
from litestar.params import FromQuery

from saas.app import create_app
from saas.embedded import embedded_redis
from saas.errors import exception_handlers
from saas.settings import Settings
from tenants.errors import TenantSuspended
from tests.conftest import app_client


async def test_health_ready_openapi_and_request_ids(settings: Settings) -> None:
    async with app_client(create_app(settings)) as client:
        health = await client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert len(health.headers["x-request-id"]) == 32

        ready = await client.get("/readyz", headers={"X-Request-ID": "probe-0001"})
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}
        assert ready.headers["x-request-id"] == "probe-0001"

        schema = (await client.get("/schema/openapi.json")).json()
        assert schema["info"]["title"] == "Atende API"
        assert {"/healthz", "/readyz"} <= set(schema["paths"])


async def test_unknown_route_is_problem_json(settings: Settings) -> None:
    async with app_client(create_app(settings)) as client:
        response = await client.get("/no/such/thing", headers={"X-Request-ID": "bad id with spaces"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "not_found" and body["status"] == 404 and body["instance"] == "/no/such/thing"
    assert body["request_id"] == response.headers["x-request-id"] != "bad id with spaces"


async def test_metrics_use_route_templates_not_raw_paths(settings: Settings) -> None:
    async with app_client(create_app(settings)) as client:
        await client.get("/healthz")
        for i in range(3):
            await client.get(f"/random/{i}")
        text = (await client.get("/metrics")).text
    assert 'atende_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "/random/" not in text
    assert "atende_http_request_duration_seconds_bucket" in text


async def test_readyz_reports_a_stopped_redis(settings: Settings, tmp_path: Path) -> None:
    with contextlib.ExitStack() as redis_process:
        url = redis_process.enter_context(embedded_redis(tmp_path / "redis", persist=False))
        own = msgspec.structs.replace(settings, redis_url=url)
        async with app_client(create_app(own)) as client:
            assert (await client.get("/readyz")).status_code == 200
            redis_process.close()  # stop the redis-server
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.headers["content-type"].startswith("application/problem+json")
            body = response.json()
            assert body["code"] == "not_ready"
            assert body["checks"]["postgres"] == "ok"
            assert body["checks"]["redis"] != "ok"
            assert (await client.get("/healthz")).status_code == 200  # alive, just not ready


async def test_errors_map_to_problem_json_with_stable_codes() -> None:
    @get("/suspended")
    async def suspended() -> None:
        raise TenantSuspended("tenant 'acme' is suspended", tenant="acme")

    @get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    @get("/typed")
    async def typed(n: FromQuery[int]) -> dict[str, Any]:
        return {"n": n}

    app = Litestar([suspended, boom, typed], exception_handlers=exception_handlers(), logging_config=None)
    async with app_client(app) as client:
        r = await client.get("/suspended")
        assert (r.status_code, r.json()["code"], r.json()["tenant"]) == (403, "tenant_suspended", "acme")
        r = await client.get("/boom")
        assert (r.status_code, r.json()["code"]) == (500, "internal_error")
        assert "secret" not in r.text
        r = await client.get("/typed", params={"n": "x"})
        assert (r.status_code, r.json()["code"]) == (400, "validation_error")
        assert r.json()["errors"]
        r = await client.post("/typed")
        assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed")
