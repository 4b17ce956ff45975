"""The outbox relay: a queued message reaches its connection's outbound stream after its transaction committed.

The API (or the router, for automated messages and inbound media downloads) writes the message and its outbox
entry in one transaction and marks the tenant dirty in Redis *before* committing; right after the commit it
relays the entry itself. If the process dies in between,
the router's relay loop finds the tenant in the dirty set and relays what is left. The session host
deduplicates by message id, so relaying twice is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis

from supervisor.streams import StreamKeys, append_outbound
from supervisor.wire import FetchMedia, MediaRef, OutboundMessage
from tenants.context import tenant_context

__all__ = ["clear_dirty", "dirty_tenants", "mark_dirty", "outbox_dirty_key", "relay_tenant"]

# A writer marks *before* its commit, so the relay loop, finding nothing unrelayed, cannot tell "done" from "a
# transaction still in flight". A mark is therefore removed only when it is older than any writer transaction
# (MARK_GRACE_S) and nobody marked the tenant again since the loop read it.
MARK_GRACE_S = 30.0
_CLEAR = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) and tonumber(score) < tonumber(ARGV[3]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""


def outbox_dirty_key(keys: StreamKeys) -> str:
    """A sorted set: tenant id -> the time of its latest mark (ms)."""
    return f"{keys.prefix}:outbox:marks"


async def mark_dirty(redis: Redis, keys: StreamKeys, tenant_id: int) -> None:
    await redis.zadd(outbox_dirty_key(keys), {str(tenant_id): int(time.time() * 1000)}, gt=True)


async def dirty_tenants(redis: Redis, keys: StreamKeys) -> list[tuple[int, float]]:
    """The marked tenants with the time of their latest mark (pass it to :func:`clear_dirty`)."""
    marks: Any = await redis.zrange(outbox_dirty_key(keys), 0, -1, withscores=True)
    return [(int(member), float(score)) for member, score in marks]


async def clear_dirty(redis: Redis, keys: StreamKeys, tenant_id: int, mark: float, *,
                      grace_s: float = MARK_GRACE_S) -> bool:  # fmt: skip
    """Remove the tenant's mark if it is still ``mark`` and older than ``grace_s``; True if removed."""
    before = int((time.time() - grace_s) * 1000)
    removed: Any = await redis.eval(_CLEAR, 1, outbox_dirty_key(keys), str(tenant_id), int(mark), before)
    return bool(removed)


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
