"""The outbox relay: a queued message reaches its connection's outbound stream after its transaction committed.

The API (or the router, for automated messages and inbound media downloads) writes the message and its outbox
entry in one transaction and marks the tenant dirty in Redis *before* committing; right after the commit it
relays the entry itself. If the process dies in between,
the router's relay loop finds the tenant in the dirty set and relays what is left. The session host
deduplicates by message id, so relaying twice is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from redis.asyncio import Redis

from supervisor.streams import StreamKeys, append_outbound
from supervisor.wire import FetchMedia, MediaRef, OutboundMessage
from tenants.context import tenant_context

__all__ = ["mark_dirty", "outbox_dirty_key", "relay_tenant"]


def outbox_dirty_key(keys: StreamKeys) -> str:
    return f"{keys.prefix}:outbox:dirty"


async def mark_dirty(redis: Redis, keys: StreamKeys, tenant_id: int) -> None:
    await redis.sadd(outbox_dirty_key(keys), str(tenant_id))


async def relay_tenant(redis: Redis, keys: StreamKeys, tenant_id: int, *, older_than_s: float = 0.0,
                       message_ids: Sequence[int] | None = None) -> int:  # fmt: skip
    """Append unrelayed outbox entries of one tenant (all, or ``message_ids``) and mark them relayed."""
    async with tenant_context(tenant_id=tenant_id) as session:
        rows = await session.conn.fetch(
            """
            SELECT o.id AS outbox_id, o.kind AS command, m.id, m.connection_id, m.kind, m.body, m.media, m.reply_to_id,
                   m.created_at, c.wa_id AS chat_id
            FROM outbox o JOIN messages m ON m.id = o.message_id JOIN tickets t ON t.id = m.ticket_id
            JOIN contacts c ON c.id = t.contact_id
            WHERE o.relayed_at IS NULL AND o.created_at <= now() - make_interval(secs => $1)
              AND ($2::bigint[] IS NULL OR o.message_id = ANY($2::bigint[]))
            ORDER BY o.id LIMIT 1000
            """,
            older_than_s,
            list(message_ids) if message_ids is not None else None,
        )
    if not rows:
        return 0
    commands: list[OutboundMessage | FetchMedia] = []
    for r in rows:
        media = _media_ref(r["media"], stored=r["command"] == "send")
        if r["command"] == "fetch":
            if media is None:
                continue  # nothing to download (cannot happen: the router only queues messages with media)
            commands.append(FetchMedia(tenant_id=tenant_id, connection_id=r["connection_id"], message_id=r["id"],
                                       chat_id=r["chat_id"], kind=r["kind"], media=media, created_at=r["created_at"]))  # fmt: skip
        else:
            commands.append(OutboundMessage(tenant_id=tenant_id, connection_id=r["connection_id"], message_id=r["id"],
                                            chat_id=r["chat_id"], kind=r["kind"], text=r["body"], media=media,
                                            reply_to_id=r["reply_to_id"], created_at=r["created_at"]))  # fmt: skip
    await append_outbound(redis, keys, commands)
    async with tenant_context(tenant_id=tenant_id) as session:
        await session.conn.execute(
            "UPDATE outbox SET relayed_at = now(), attempts = attempts + 1 WHERE id = ANY($1::bigint[])",
            [r["outbox_id"] for r in rows],
        )
    return len(rows)


def _media_ref(raw: str | None, *, stored: bool) -> MediaRef | None:
    """The media of a message as the host needs it: our store key for a send (an agent's upload), the provider's
    reference for an inbound item still to download."""
    if raw is None:
        return None
    media = msgspec.json.decode(raw)
    ref = media.get("key") if stored else media.get("ref")
    if not ref:
        return None
    return MediaRef(
        mime=media["mime"], size=media.get("size"), filename=media.get("filename"), ref=ref, sha256=media.get("sha256")
    )
