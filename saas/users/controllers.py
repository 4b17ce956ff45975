"""``/api/v1/users`` (admins manage, supervisors read), ``/api/v1/profile`` (everyone, themselves),
``/api/v1/audit`` (admins), and the public one-time-token endpoints under ``/api/v1/auth``."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from saas.audit.service import AuditPage, list_entries
from saas.auth import ratelimit
from saas.auth.guards import Caller, requires
from saas.auth.permissions import Permission
from saas.auth.principal import Principal, principal_context
from saas.effects import Effects, act
from saas.params import Cursor, Id, Limit, client_address
from saas.queues.assign import distribute_now, queues_of_user
from saas.runtime import Runtime
from saas.tickets.lifecycle import lock_distribution
from saas.users.schemas import (
    AcceptInvite,
    ChangePassword,
    Invite,
    InviteResult,
    ProfileUpdate,
    ResetPassword,
    ResetToken,
    UserOut,
    UserPage,
    UserUpdate,
)
from saas.users.service import (
    do_accept_invite,
    do_change_password,
    do_invite,
    do_reset_password,
    do_set_active,
    do_update,
    get_user,
    issue_reset_token,
    list_users,
)
from supervisor.wire import utcnow
from tenants.context import TenantSession, tenant_context

__all__ = ["AccountController", "AuditController", "ProfileController", "UsersController"]


def _value(value: Any) -> Any:
    return None if value is msgspec.UNSET else value


class UsersController(Controller):
    path = "/api/v1/users"
    tags = ["users"]

    @get("/", summary="List the tenant's users", guards=[requires(Permission.USERS_READ)])
    async def index(self, caller: NamedDependency[Caller], limit: Limit = 50, cursor: Cursor = None) -> UserPage:
        async with principal_context(caller.claims) as (_principal, session):
            return await list_users(session, limit=limit, cursor=cursor)

    @get("/{user_id:int}", summary="One user", guards=[requires(Permission.USERS_READ)])
    async def detail(self, caller: NamedDependency[Caller], user_id: Id) -> UserOut:
        async with principal_context(caller.claims) as (_principal, session):
            return await get_user(session, user_id)

    @post("/invite", summary="Invite a user; the one-time invite token is shown once", status_code=201,
          guards=[requires(Permission.USERS_MANAGE)])  # fmt: skip
    async def invite(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                     data: JSONBody[Invite]) -> InviteResult:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            user, token, expires = await do_invite(session, actor_id=principal.user_id, email=data.email,
                                                   name=data.name, role=data.role, origin=client_address(request))  # fmt: skip
        return InviteResult(user=user, invite_token=token, expires_at=expires)

    @patch("/{user_id:int}", summary="Change a user's role, name or capacity (a role change ends their sessions)",
           guards=[requires(Permission.USERS_MANAGE)])  # fmt: skip
    async def update(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                     runtime: NamedDependency[Runtime], user_id: Id, data: JSONBody[UserUpdate]) -> UserOut:  # fmt: skip
        async def change(session: TenantSession, principal: Principal) -> tuple[UserOut, Effects]:
            if data.capacity is not msgspec.UNSET:  # the user row comes after the distribution lock, always
                await lock_distribution(session.conn, session.tenant.id)
            user = await do_update(session, actor_id=principal.user_id, user_id=user_id, role=_value(data.role),
                                   name=_value(data.name), capacity=_value(data.capacity),
                                   origin=client_address(request))  # fmt: skip
            if data.capacity is msgspec.UNSET:
                return user, Effects()
            return user, await distribute_now(session, await queues_of_user(session.conn, user_id), now=utcnow())

        return await act(caller, runtime, change)

    @post("/{user_id:int}/disable", summary="Disable a user (ends their sessions)", status_code=200,
          guards=[requires(Permission.USERS_MANAGE)])  # fmt: skip
    async def disable(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                      user_id: Id) -> UserOut:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            return await do_set_active(session, actor_id=principal.user_id, user_id=user_id, active=False,
                                       origin=client_address(request))  # fmt: skip

    @post("/{user_id:int}/enable", summary="Enable a user", status_code=200, guards=[requires(Permission.USERS_MANAGE)])
    async def enable(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                     user_id: Id) -> UserOut:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            return await do_set_active(session, actor_id=principal.user_id, user_id=user_id, active=True,
                                       origin=client_address(request))  # fmt: skip

    @post("/{user_id:int}/password-reset", summary="Issue a one-time password reset token (shown once)",
          status_code=201, guards=[requires(Permission.USERS_MANAGE)])  # fmt: skip
    async def password_reset(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                             user_id: Id) -> ResetToken:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            token, expires = await issue_reset_token(session, actor_id=principal.user_id, user_id=user_id,
                                                     origin=client_address(request))  # fmt: skip
        return ResetToken(reset_token=token, expires_at=expires)


class ProfileController(Controller):
    path = "/api/v1/profile"
    tags = ["users"]

    @get("/", summary="The caller's own profile", guards=[requires(Permission.PROFILE_MANAGE)])
    async def show(self, caller: NamedDependency[Caller]) -> UserOut:
        async with principal_context(caller.claims) as (principal, session):
            return await get_user(session, principal.user_id)

    @patch("/", summary="Change the caller's own name", guards=[requires(Permission.PROFILE_MANAGE)])
    async def edit(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                   data: JSONBody[ProfileUpdate]) -> UserOut:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            return await do_update(session, actor_id=principal.user_id, user_id=principal.user_id, role=None,
                                   name=_value(data.name), origin=client_address(request))  # fmt: skip

    @post("/password", summary="Change the caller's password (ends every session)", status_code=204,
          guards=[requires(Permission.PROFILE_MANAGE)])  # fmt: skip
    async def change_password(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                              data: JSONBody[ChangePassword]) -> None:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            await do_change_password(session, user_id=principal.user_id, current=data.current_password,
                                     new=data.new_password, origin=client_address(request))  # fmt: skip


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ["audit"]

    @get("/", summary="The tenant's audit log, newest first", guards=[requires(Permission.AUDIT_READ)])
    async def index(self, caller: NamedDependency[Caller], limit: Limit = 50, cursor: Cursor = None) -> AuditPage:
        async with principal_context(caller.claims) as (_principal, session):
            return await list_entries(session, limit=limit, cursor=cursor)


class AccountController(Controller):
    """Public endpoints that act on a one-time token (throttled per client address)."""

    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/accept-invite", summary="Accept an invitation: set a password", status_code=204)
    async def accept_invite(self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime],
                            data: JSONBody[AcceptInvite]) -> None:  # fmt: skip
        await ratelimit.hit(
            runtime.redis_client, runtime.keys.prefix, ratelimit.LOGIN_IP, client_address(request) or "unknown"
        )
        async with tenant_context(data.tenant) as session:
            await do_accept_invite(session, token=data.token, password=data.password, name=data.name,
                                   origin=client_address(request))  # fmt: skip

    @post("/reset-password", summary="Set a new password with a reset token (ends every session)", status_code=204)
    async def reset_password(self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime],
                             data: JSONBody[ResetPassword]) -> None:  # fmt: skip
        await ratelimit.hit(
            runtime.redis_client, runtime.keys.prefix, ratelimit.LOGIN_IP, client_address(request) or "unknown"
        )
        async with tenant_context(data.tenant) as session:
            await do_reset_password(session, token=data.token, password=data.password, origin=client_address(request))
