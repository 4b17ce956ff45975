"""``/api/v1/platform``: operator login and tenant management (platform operators only)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from saas.auth import ratelimit
from saas.auth.guards import Caller, requires
from saas.auth.permissions import Permission
from saas.params import client_address
from saas.platform.schemas import CreateTenant, OperatorLogin, OperatorToken, TenantOut, TenantPage
from saas.platform.service import change_tenant_status, login, operator_context, provision_tenant, tenant_page
from saas.runtime import Runtime

__all__ = ["PlatformController"]


class PlatformController(Controller):
    path = "/api/v1/platform"
    tags = ["platform"]

    @post("/auth/login", status_code=200,
          summary="Log in as a platform operator: a 30 min access token, no refresh token (10 failed attempts per "
                  "account in 15 min, then 429)")  # fmt: skip
    async def login(
        self, request: Request[Any, Any, Any], data: JSONBody[OperatorLogin], runtime: NamedDependency[Runtime]
    ) -> OperatorToken:
        # "platform" is a reserved tenant slug, so this never shares a counter with a tenant account.
        account = f"platform:{data.email.strip().lower()}"
        address = client_address(request) or "unknown"
        async with ratelimit.login_attempt(runtime.redis_client, runtime.keys.prefix, account=account, address=address):
            return await login(runtime.tokens, email=data.email, password=data.password)

    @get("/tenants", summary="List tenants, oldest first", guards=[requires(Permission.PLATFORM_TENANTS)])
    async def tenants(self, caller: NamedDependency[Caller]) -> TenantPage:
        async with operator_context(caller.claims):
            return await tenant_page()

    @post("/tenants", summary="Provision a tenant and its first admin, all or nothing", status_code=201,
          guards=[requires(Permission.PLATFORM_TENANTS)])  # fmt: skip
    async def create(self, caller: NamedDependency[Caller], data: JSONBody[CreateTenant]) -> TenantOut:
        async with operator_context(caller.claims) as operator:
            return await provision_tenant(operator, data)

    @post("/tenants/{slug:str}/suspend", summary="Suspend a tenant: its users and tokens stop working",
          status_code=200, guards=[requires(Permission.PLATFORM_TENANTS)])  # fmt: skip
    async def suspend(self, caller: NamedDependency[Caller], slug: FromPath[str]) -> TenantOut:
        async with operator_context(caller.claims) as operator:
            return await change_tenant_status(operator, slug, "suspended")

    @post("/tenants/{slug:str}/resume", summary="Resume a suspended tenant", status_code=200,
          guards=[requires(Permission.PLATFORM_TENANTS)])  # fmt: skip
    async def resume(self, caller: NamedDependency[Caller], slug: FromPath[str]) -> TenantOut:
        async with operator_context(caller.claims) as operator:
            return await change_tenant_status(operator, slug, "active")
