"""Process-wide resources of the API (database pool, Redis client), opened on start-up and closed on shutdown."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis

from saas.settings import Settings
from tenants import db

__all__ = ["Runtime"]


@dataclass(slots=True)
class Runtime:
    """What handlers get injected as ``runtime``: settings and live clients."""

    settings: Settings
    redis: Redis | None = field(default=None)

    async def start(self) -> None:
        self.settings.require("database_url", "redis_url")
        assert self.settings.database_url is not None and self.settings.redis_url is not None
        await db.start(self.settings.database_url, max_size=self.settings.db_pool_size)
        self.redis = Redis.from_url(
            self.settings.redis_url, socket_connect_timeout=1.0, socket_timeout=2.0, health_check_interval=10
        )

    async def stop(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None
        await db.stop()

    async def ping_db(self) -> None:
        await db.pool().fetchval("SELECT 1")

    async def ping_redis(self) -> None:
        if self.redis is None:
            raise RuntimeError("redis client not started")
        await self.redis.ping()
