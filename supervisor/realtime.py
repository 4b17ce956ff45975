"""The one realtime publisher (used by the router, the API and session hosts): what the inbox shows, appended to the tenant's realtime stream after a commit.

Events go to a capped Redis Stream per tenant (``StreamKeys.realtime``), so every event has an id and a
reconnecting client can ask for everything after the last id it saw. Publish only after the transaction
that made the change has committed (Zulip's rule): a client must never see what may still roll back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis

from supervisor.streams import StreamKeys

__all__ = ["REALTIME_MAXLEN", "RealtimeEvent", "publish"]

REALTIME_MAXLEN = 10_000


class RealtimeEvent(msgspec.Struct, frozen=True, kw_only=True):
    """``type`` is one of message.created, message.updated, ticket.created, ticket.updated, session.updated.

    ``ticket_id`` lets the API deliver the event only to agents allowed to see that ticket.
    """

    type: str
    ticket_id: int | None = None
    data: dict[str, Any]


_encoder = msgspec.json.Encoder()


async def publish(redis: Redis, keys: StreamKeys, tenant_id: int, events: Sequence[RealtimeEvent]) -> None:
    if not events:
        return
    key = keys.realtime(tenant_id)
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            _ = pipe.xadd(key, {b"e": _encoder.encode(event)}, maxlen=REALTIME_MAXLEN, approximate=True)
        await pipe.execute()
