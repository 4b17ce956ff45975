"""``check_*`` validates, ``do_*`` changes; every change of role, status or password bumps the user's token
version (so existing access tokens stop working) and revokes their refresh tokens, and is audited.

One-time tokens (invitations, password resets) are random, stored only as a SHA-256 hash, expire, and are
consumed in the same transaction that uses them.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import asyncpg

from saas.audit.service import record
from saas.users.schemas import UserOut, UserPage
from tenants.context import TenantSession
from tenants.errors import Conflict, Forbidden, InvalidInput, NotFound
from tenants.passwords import hash_password, verify_password
from tenants.provisioning import check_email

__all__ = [
    "UserNotFound",
    "do_accept_invite",
    "do_change_password",
    "do_invite",
    "do_reset_password",
    "do_set_active",
    "do_update",
    "get_user",
    "issue_reset_token",
    "list_users",
]

INVITE_TTL = timedelta(days=7)
RESET_TTL = timedelta(hours=2)


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "User not found"


class InvalidOneTimeToken(InvalidInput):
    code = "invalid_token"
    title = "Invalid or expired token"


class UserLimitReached(Forbidden):
    code = "plan_limit_reached"
    title = "Plan limit reached"


class LastAdmin(Conflict):
    code = "last_admin"
    title = "A tenant keeps at least one active admin"


_COLUMNS = "id, email, name, role, active, password_hash IS NULL AS invited, capacity, presence, created_at"


def _user(row: asyncpg.Record) -> UserOut:
    return UserOut(**dict(row))


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def list_users(session: TenantSession, *, limit: int, cursor: str | None) -> UserPage:
    if cursor and not cursor.isdigit():
        raise InvalidInput("invalid cursor", field="cursor")
    after = int(cursor) if cursor else 0
    rows = await session.conn.fetch(
        f"SELECT {_COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2", after, limit + 1
    )
    items = [_user(r) for r in rows[:limit]]
    return UserPage(items=items, next_cursor=str(items[-1].id) if len(rows) > limit else None)


async def get_user(session: TenantSession, user_id: int) -> UserOut:
    row = await session.conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
    if row is None:
        raise UserNotFound(f"user {user_id} does not exist", user_id=user_id)
    return _user(row)


async def _one_time_token(session: TenantSession, user_id: int, kind: str, ttl: timedelta, created_by: int | None
                          ) -> tuple[str, datetime]:  # fmt: skip
    token = secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + ttl
    # A new token replaces any earlier unused one of the same kind.
    await session.conn.execute(
        "UPDATE user_tokens SET used_at = now() WHERE user_id = $1 AND kind = $2 AND used_at IS NULL", user_id, kind
    )
    await session.conn.execute(
        "INSERT INTO user_tokens (user_id, kind, token_hash, created_by, expires_at) VALUES ($1, $2, $3, $4, $5)",
        user_id, kind, _digest(token), created_by, expires,
    )  # fmt: skip
    return token, expires


async def do_invite(session: TenantSession, *, actor_id: int, email: str, name: str, role: str,
                    origin: str | None) -> tuple[UserOut, str, datetime]:  # fmt: skip
    email = check_email(email)
    limit = await session.conn.fetchval(
        "SELECT p.max_users FROM public.tenants t JOIN public.plans p ON p.id = t.plan_id WHERE t.id = $1",
        session.tenant.id,
    )
    if limit is not None and await session.conn.fetchval("SELECT count(*) FROM users WHERE active") >= limit:
        raise UserLimitReached(f"the plan allows {limit} user(s)", limit=limit)
    try:
        row = await session.conn.fetchrow(
            f"INSERT INTO users (email, name, role) VALUES ($1, $2, $3) RETURNING {_COLUMNS}", email, name.strip(), role
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"{email} is already a user of this tenant", field="email") from exc
    assert row is not None
    token, expires = await _one_time_token(session, row["id"], "invite", INVITE_TTL, actor_id)
    await record(session, actor_id=actor_id, action="user.invited", target=f"user:{row['id']}",
                 details={"email": email, "role": role}, origin=origin)  # fmt: skip
    return _user(row), token, expires


async def _consume(session: TenantSession, token: str, kind: str) -> int:
    user_id: int | None = await session.conn.fetchval(
        "UPDATE user_tokens SET used_at = now() WHERE token_hash = $1 AND kind = $2 AND used_at IS NULL"
        " AND expires_at > now() RETURNING user_id",
        _digest(token), kind,
    )  # fmt: skip
    if user_id is None:
        raise InvalidOneTimeToken("the link is invalid, used or expired")
    return user_id


async def _revoke_sessions(session: TenantSession, user_id: int) -> None:
    await session.conn.execute("UPDATE users SET token_version = token_version + 1, updated_at = now() WHERE id = $1",
                               user_id)  # fmt: skip
    await session.conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL", user_id
    )


async def do_accept_invite(session: TenantSession, *, token: str, password: str, name: str | None,
                           origin: str | None) -> int:  # fmt: skip
    password_hash = hash_password(password)  # policy check before consuming the token
    user_id = await _consume(session, token, "invite")
    await session.conn.execute(
        "UPDATE users SET password_hash = $2, name = coalesce($3, name), updated_at = now() WHERE id = $1",
        user_id, password_hash, name,
    )  # fmt: skip
    await record(session, actor_id=user_id, action="user.invite_accepted", target=f"user:{user_id}", origin=origin)
    return user_id


async def issue_reset_token(session: TenantSession, *, actor_id: int, user_id: int, origin: str | None
                            ) -> tuple[str, datetime]:  # fmt: skip
    await get_user(session, user_id)
    token, expires = await _one_time_token(session, user_id, "reset", RESET_TTL, actor_id)
    await record(
        session, actor_id=actor_id, action="user.password_reset_issued", target=f"user:{user_id}", origin=origin
    )
    return token, expires


async def do_reset_password(session: TenantSession, *, token: str, password: str, origin: str | None) -> None:
    password_hash = hash_password(password)
    user_id = await _consume(session, token, "reset")
    await session.conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)
    await _revoke_sessions(session, user_id)
    await record(session, actor_id=user_id, action="user.password_reset", target=f"user:{user_id}", origin=origin)


async def _ensure_another_admin(session: TenantSession, user_id: int) -> None:
    others = await session.conn.fetchval(
        "SELECT count(*) FROM users WHERE role = 'admin' AND active AND password_hash IS NOT NULL AND id <> $1", user_id
    )
    if not others:
        raise LastAdmin("this is the last active admin of the tenant")


async def do_set_active(session: TenantSession, *, actor_id: int, user_id: int, active: bool, origin: str | None
                        ) -> UserOut:  # fmt: skip
    user = await get_user(session, user_id)
    if not active and user.role == "admin":
        await _ensure_another_admin(session, user_id)
    if user.active != active:
        await session.conn.execute("UPDATE users SET active = $2 WHERE id = $1", user_id, active)
        await _revoke_sessions(session, user_id)
        await record(session, actor_id=actor_id, action="user.enabled" if active else "user.disabled",
                     target=f"user:{user_id}", origin=origin)  # fmt: skip
    return await get_user(session, user_id)


async def do_update(session: TenantSession, *, actor_id: int, user_id: int, role: str | None, name: str | None,
                    origin: str | None, capacity: int | None = None) -> UserOut:  # fmt: skip
    user = await get_user(session, user_id)
    if capacity is not None and capacity != user.capacity:
        await session.conn.execute(
            "UPDATE users SET capacity = $2, updated_at = now() WHERE id = $1", user_id, capacity
        )
        await record(session, actor_id=actor_id, action="user.capacity_changed", target=f"user:{user_id}",
                     details={"from": user.capacity, "to": capacity}, origin=origin)  # fmt: skip
    if name is not None:
        await session.conn.execute(
            "UPDATE users SET name = $2, updated_at = now() WHERE id = $1", user_id, name.strip()
        )
    if role is not None and role != user.role:
        if user.role == "admin":
            await _ensure_another_admin(session, user_id)
        await session.conn.execute("UPDATE users SET role = $2 WHERE id = $1", user_id, role)
        await _revoke_sessions(session, user_id)
        await record(session, actor_id=actor_id, action="user.role_changed", target=f"user:{user_id}",
                     details={"from": user.role, "to": role}, origin=origin)  # fmt: skip
    return await get_user(session, user_id)


async def do_change_password(
    session: TenantSession, *, user_id: int, current: str, new: str, origin: str | None
) -> None:
    stored = await session.conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id)
    if stored is None or not verify_password(stored, current):
        raise InvalidInput("the current password is wrong", field="current_password")
    await session.conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, hash_password(new))
    await _revoke_sessions(session, user_id)
    await record(session, actor_id=user_id, action="user.password_changed", target=f"user:{user_id}", origin=origin)
