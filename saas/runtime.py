"""Process-wide resources of the API (database pool, Redis client, token service), opened on start-up and
closed on shutdown."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis

from saas.auth.tokens import TokenService
from saas.settings import Settings
from supervisor.media import MediaStore, store_from_settings
from supervisor.streams import StreamKeys
from tenants import db
from tenants.secrets import MasterKeys

__all__ = ["Runtime"]


@dataclass(slots=True)
class Runtime:
    """What handlers get injected as ``runtime``: settings and live clients."""

    settings: Settings
    redis: Redis | None = field(default=None)
    tokens: TokenService = field(init=False)
    keys: StreamKeys = field(init=False)
    owns_pool: bool = False
    media_store: MediaStore | None = None
    _masters: MasterKeys | None = None

    def __post_init__(self) -> None:
        self.settings.require("secret_key")
        assert self.settings.secret_key is not None
        self.tokens = TokenService.from_secrets(
            self.settings.secret_key, self.settings.previous_secret_keys, self.settings.access_token_ttl_s
        )
        self.keys = StreamKeys(self.settings.redis_prefix, self.settings.stream_shards)

    async def start(self) -> None:
        self.settings.require("database_url", "redis_url")
        assert self.settings.database_url is not None and self.settings.redis_url is not None
        self.owns_pool = db.DB.pool is None  # embedded next to other users of the pool (tests): share it
        if self.owns_pool:
            await db.start(self.settings.database_url, max_size=self.settings.db_pool_size)
        self.redis = Redis.from_url(
            self.settings.redis_url, socket_connect_timeout=1.0, socket_timeout=30.0, health_check_interval=10
        )
        settings = self.settings
        self.media_store = store_from_settings(settings.media_store, root=settings.media_path,
                                               s3_endpoint=settings.s3_endpoint, s3_bucket=settings.s3_bucket,
                                               s3_access_key=settings.s3_access_key,
                                               s3_secret_key=settings.s3_secret_key, s3_region=settings.s3_region)  # fmt: skip

    async def stop(self) -> None:
        if self.media_store is not None:
            await self.media_store.aclose()
            self.media_store = None
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None
        if self.owns_pool:
            await db.stop()

    @property
    def masters(self) -> MasterKeys:
        """The master keys that unwrap tenants' data keys (secrets at rest); ``ATENDE_MASTER_KEY`` must be set."""
        if self._masters is None:
            self.settings.require("master_key")
            assert self.settings.master_key is not None
            self._masters = MasterKeys.from_strings(self.settings.master_key, self.settings.previous_master_keys)
        return self._masters

    @property
    def media(self) -> MediaStore:
        if self.media_store is None:
            raise RuntimeError("media store not started")
        return self.media_store

    @property
    def redis_client(self) -> Redis:
        if self.redis is None:
            raise RuntimeError("redis client not started")
        return self.redis

    def ws_ticket_key(self, ticket: str) -> str:
        return f"{self.settings.redis_prefix}:wsticket:{ticket}"

    async def ping_db(self) -> None:
        await db.pool().fetchval("SELECT 1")

    async def ping_redis(self) -> None:
        await self.redis_client.ping()
