"""The session registry: which sessions should run, where, under which lease — and their persisted state.

The lease gives one live connection per session across the cluster. ``acquire`` succeeds if the lease is
free, expired, or already held by the same host name (a host that Ray restarted gets its sessions back at
once); every acquisition increments ``lease_token``, the fencing token. State writes carry the token and are
ignored if a newer holder exists, so a zombie host can never overwrite the live one.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from supervisor.wire import SessionState
from tenants.context import TenantSession, tenant_context
from tenants.db import pool
from tenants.errors import TenantNotFound, TenantSuspended
from tenants.secrets import MasterKeys, is_sealed, tenant_cipher

__all__ = [
    "Claim",
    "SessionSpec",
    "claim_session",
    "desired_sessions",
    "record_state",
    "release_lease",
    "renew_lease",
    "set_placement",
]


class SessionSpec(msgspec.Struct, frozen=True, kw_only=True):
    registry_id: int
    tenant_id: int
    connection_id: int
    provider: str
    dedicated_host: bool = False
    host: str | None = None


class ConnectionDetails(msgspec.Struct, frozen=True, kw_only=True):
    business_number: str
    endpoint: str | None
    credentials: bytes | None


async def desired_sessions() -> list[SessionSpec]:
    """Sessions that should run: desired ``running``, tenant active, not parked in a terminal state."""
    rows = await pool().fetch(
        """
        SELECT r.id, r.tenant_id, r.connection_id, r.provider, r.host, t.dedicated_host
        FROM public.session_registry r JOIN public.tenants t ON t.id = r.tenant_id
        WHERE r.desired_state = 'running' AND t.status = 'active'
          AND r.state NOT IN ('LOGGED_OUT', 'QUARANTINED', 'GAVE_UP')
        ORDER BY r.id
        """
    )
    return [SessionSpec(registry_id=r["id"], tenant_id=r["tenant_id"], connection_id=r["connection_id"],
                        provider=r["provider"], host=r["host"], dedicated_host=r["dedicated_host"]) for r in rows]  # fmt: skip


async def set_placement(placements: dict[int, str]) -> None:
    if placements:
        await pool().execute(
            "UPDATE public.session_registry r SET host = u.host, updated_at = now()"
            " FROM unnest($1::bigint[], $2::text[]) AS u(id, host) WHERE r.id = u.id",
            list(placements),
            list(placements.values()),
        )


TERMINAL_STATES = ("LOGGED_OUT", "QUARANTINED", "GAVE_UP")


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    token: int | None
    state: str | None
    connection: ConnectionDetails | None


async def claim_session(spec: SessionSpec, owner: str, ttl_s: float, masters: MasterKeys) -> Claim:
    """Take the session's lease and load its connection, in one tenant transaction and one statement.

    The token is None if another live owner holds the lease, or if the session is parked in a terminal
    state (only a new pairing or an operator's start brings it back) and we are not the owner continuing
    it. A suspended or deleted tenant yields no token either. Every acquisition increments the token.
    """
    try:
        async with tenant_context(tenant_id=spec.tenant_id) as session:
            row = await session.conn.fetchrow(
                """
                WITH taken AS (
                    UPDATE public.session_registry
                    SET lease_owner = $2, lease_token = lease_token + 1,
                        lease_expires_at = now() + make_interval(secs => $3)
                    WHERE id = $1 AND (lease_owner = $2
                                       OR ((lease_owner IS NULL OR lease_expires_at < now())
                                           AND state <> ALL($4::text[])))
                    RETURNING lease_token
                )
                SELECT (SELECT lease_token FROM taken) AS token, r.state, c.business_number, c.endpoint, c.credentials
                FROM public.session_registry r LEFT JOIN connections c ON c.id = $5
                WHERE r.id = $1
                """,
                spec.registry_id, owner, ttl_s, list(TERMINAL_STATES), spec.connection_id,
            )  # fmt: skip
            credentials = await _open_credentials(session, spec, masters, row["credentials"] if row else None)
    except (TenantNotFound, TenantSuspended):
        return Claim(token=None, state=None, connection=None)
    if row is None:
        return Claim(token=None, state=None, connection=None)
    details = None
    if row["business_number"] is not None:
        details = ConnectionDetails(business_number=row["business_number"], endpoint=row["endpoint"],
                                    credentials=credentials)  # fmt: skip
    return Claim(token=row["token"], state=row["state"], connection=details)


async def _open_credentials(session: TenantSession, spec: SessionSpec, masters: MasterKeys,
                            stored: bytes | None) -> bytes | None:  # fmt: skip
    """Decrypt stored credentials in the lease's transaction (a wrong master key rolls the claim back and is
    retried, never mistaken for "no credentials", which would re-pair over good ones). Credentials written before
    encryption existed are sealed on first read."""
    if stored is None:
        return None
    cipher = await tenant_cipher(session.conn, spec.tenant_id, masters)
    if is_sealed(stored):
        return cipher.decrypt(stored)
    await session.conn.execute(
        "UPDATE connections SET credentials = $2 WHERE id = $1 AND credentials = $3",
        spec.connection_id, cipher.encrypt(stored), stored,
    )  # fmt: skip
    return stored


async def renew_lease(registry_id: int, owner: str, token: int, ttl_s: float) -> bool:
    status = await pool().execute(
        "UPDATE public.session_registry SET lease_expires_at = now() + make_interval(secs => $4)"
        " WHERE id = $1 AND lease_owner = $2 AND lease_token = $3",
        registry_id, owner, token, ttl_s,
    )  # fmt: skip
    return status.endswith(" 1")


async def release_lease(registry_id: int, owner: str, token: int) -> None:
    await pool().execute(
        "UPDATE public.session_registry SET lease_owner = NULL, lease_expires_at = NULL"
        " WHERE id = $1 AND lease_owner = $2 AND lease_token = $3",
        registry_id, owner, token,
    )  # fmt: skip


async def record_state(
    spec: SessionSpec,
    token: int,
    state: SessionState,
    *,
    masters: MasterKeys,
    reason: str | None = None,
    qr: str | None = None,
    qr_expires_at: datetime | None = None,
    credentials: bytes | None = None,
) -> bool:
    """Persist a state change if ``token`` is still the current lease; False if we were fenced off.

    One statement in one tenant transaction: the fenced registry update gates the tenant row's update.
    """
    try:
        async with tenant_context(tenant_id=spec.tenant_id) as session:
            sealed = None
            if credentials is not None:  # same transaction: a new data key and its ciphertext commit together
                sealed = (await tenant_cipher(session.conn, spec.tenant_id, masters)).encrypt(credentials)
            changed = await session.conn.fetchval(
                """
                WITH fenced AS (
                    UPDATE public.session_registry SET state = $3, updated_at = now()
                    WHERE id = $1 AND lease_token = $2 RETURNING id
                )
                UPDATE connections SET state = $3, state_reason = $5, qr = $6, qr_expires_at = $7,
                       credentials = CASE WHEN $9 THEN NULL ELSE coalesce($8, credentials) END, updated_at = now()
                WHERE id = $4 AND EXISTS (SELECT 1 FROM fenced)
                RETURNING true
                """,
                spec.registry_id, token, state.value, spec.connection_id, reason, qr, qr_expires_at, sealed,
                state is SessionState.LOGGED_OUT,
            )  # fmt: skip
    except (TenantNotFound, TenantSuspended):
        return False
    return bool(changed)
