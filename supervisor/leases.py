"""Redis leases: one owner at a time for a named resource (a router's stream shard).

``SET NX PX`` to take, a compare-and-extend script to renew, compare-and-delete to release — all single-key,
so they work on a Redis Cluster. Leases on WhatsApp sessions live in PostgreSQL instead (with a fencing
token), see ``supervisor.registry``.
"""

from __future__ import annotations

from redis.asyncio import Redis

__all__ = ["RedisLease"]

_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class RedisLease:
    __slots__ = ("key", "owner", "redis", "ttl_ms")

    def __init__(self, redis: Redis, key: str, owner: str, ttl_ms: int = 15_000) -> None:
        self.redis = redis
        self.key = key
        self.owner = owner
        self.ttl_ms = ttl_ms

    async def acquire(self) -> bool:
        """Take the lease if free (or already ours); True if we hold it now."""
        if await self.redis.set(self.key, self.owner, nx=True, px=self.ttl_ms):
            return True
        return await self.renew()

    async def renew(self) -> bool:
        return bool(await self.redis.eval(_RENEW, 1, self.key, self.owner, str(self.ttl_ms)))

    async def release(self) -> None:
        await self.redis.eval(_RELEASE, 1, self.key, self.owner)
