"""One typed settings object, built from the environment when a process starts and passed explicitly.

Nothing reads the environment at import time. :data:`ENV_VARS` is the single list of variables: it
drives parsing, the error messages (which always name the variable) and ``atende --help``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

__all__ = ["ENV_VARS", "EnvVar", "Settings", "SettingsError"]

Environment = Literal["dev", "test", "prod"]


class SettingsError(ValueError):
    """A variable is missing or malformed; the message names it."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    env: Environment = "prod"
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "atende"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    sentry_dsn: str | None = None
    sentry_environment: str | None = None
    release: str = "atende@0.1.0"
    data_dir: Path = Path(".atende")
    db_pool_size: int = 10
    migrate_concurrency: int = 8
    demo_password: str | None = None
    demo_number: str = "+5511900000000"
    simulator_url: str = "http://127.0.0.1:8010"
    ray_address: str | None = None
    cors_origins: tuple[str, ...] = ()
    stream_shards: int = 4
    secret_key: str | None = None
    master_key: str | None = None
    previous_master_keys: tuple[str, ...] = ()
    previous_secret_keys: tuple[str, ...] = ()
    access_token_ttl_s: int = 900
    api_rate_per_min: int = 1200
    webhook_rate_per_min: int = 6000
    sessions_per_host: int = 250
    media_store: Literal["file", "s3"] = "file"
    media_dir: Path | None = None  # default: <data_dir>/media
    media_max_mb: int = 100
    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Parse every known variable from ``environ`` (default ``os.environ``); ``overrides`` win."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var in ENV_VARS:
            raw = environ.get(var.name)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[var.field] = var.parse(raw.strip())
            except (ValueError, TypeError) as exc:
                raise SettingsError(f"{var.name}: {exc} (got {raw!r}); expected {var.help}") from None
        values.update(overrides)
        return cls(**values)

    @property
    def media_path(self) -> Path:
        """Where the filesystem media store keeps its files."""
        return self.media_dir if self.media_dir is not None else self.data_dir / "media"

    def require(self, *fields: str) -> Settings:
        """Fail with a message naming the variable if any of ``fields`` is unset."""
        by_field = {v.field: v.name for v in ENV_VARS}
        missing = [by_field[f] for f in fields if getattr(self, f) in (None, "")]
        if missing:
            raise SettingsError(f"{', '.join(missing)} must be set for this command")
        return self


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return raw

    return parse


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return value

    return parse


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        scheme = urlsplit(raw).scheme
        if scheme not in schemes:
            raise ValueError(f"URL scheme must be one of {', '.join(schemes)}")
        return raw

    return parse


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _phone(raw: str) -> str:
    digits = raw.removeprefix("+")
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        raise ValueError("must be an E.164 number such as +5511900000000")
    return "+" + digits


def _log_level(raw: str) -> str:
    return _choice("DEBUG", "INFO", "WARNING", "ERROR")(raw.upper())


def _secret(raw: str) -> str:
    if len(raw) < 32:
        raise ValueError("must be at least 32 characters")
    return raw


def _secrets(raw: str) -> tuple[str, ...]:
    return tuple(_secret(item) for item in _csv(raw))


@dataclass(frozen=True, slots=True)
class EnvVar:
    name: str
    field: str
    parse: Callable[[str], Any]
    help: str


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar("ATENDE_ENV", "env", _choice("dev", "test", "prod"), "dev | test | prod (default prod; `atende dev` sets dev)"),
    EnvVar("DATABASE_URL", "database_url", _url("postgresql", "postgres"), "a postgresql:// URL (unset in `atende dev`: embedded PostgreSQL)"),
    EnvVar("REDIS_URL", "redis_url", _url("redis", "rediss", "unix"), "a redis://, rediss:// or unix:// URL (unset in `atende dev`: embedded Redis)"),
    EnvVar("ATENDE_REDIS_PREFIX", "redis_prefix", str, "prefix of every Redis key (default atende)"),
    EnvVar("ATENDE_HOST", "host", str, "address `serve`/`dev` bind to (default 127.0.0.1; --host wins)"),
    EnvVar("ATENDE_PORT", "port", _int_range(1, 65535), "port `serve`/`dev` listen on (default 8000; --port wins)"),
    EnvVar("ATENDE_LOG_LEVEL", "log_level", _log_level, "DEBUG | INFO | WARNING | ERROR (default INFO)"),
    EnvVar("ATENDE_LOG_FORMAT", "log_format", _choice("json", "console"), "json | console (default json; console in `atende dev`)"),
    EnvVar("SENTRY_DSN", "sentry_dsn", _url("http", "https"), "Sentry DSN; errors are reported only when set"),
    EnvVar("SENTRY_ENVIRONMENT", "sentry_environment", str, "Sentry environment (default: ATENDE_ENV)"),
    EnvVar("ATENDE_RELEASE", "release", str, "release name reported to Sentry and /healthz (default atende@<version>)"),
    EnvVar("ATENDE_DATA_DIR", "data_dir", Path, "where `atende dev` keeps embedded data (default .atende)"),
    EnvVar("ATENDE_DB_POOL_SIZE", "db_pool_size", _int_range(1, 500), "PostgreSQL pool size per process (default 10)"),
    EnvVar("ATENDE_MIGRATE_CONCURRENCY", "migrate_concurrency", _int_range(1, 64), "tenant schemas migrated in parallel (default 8)"),
    EnvVar("ATENDE_DEMO_PASSWORD", "demo_password", str, "password of admin@demo.local in `atende dev` (default: generated, printed)"),
    EnvVar("ATENDE_DEMO_NUMBER", "demo_number", _phone, "business number of the demo connection (default +5511900000000)"),
    EnvVar("ATENDE_SIMULATOR_URL", "simulator_url", _url("http"), "where the WhatsApp simulator listens (default http://127.0.0.1:8010)"),
    EnvVar("RAY_ADDRESS", "ray_address", str, "Ray cluster to join (default: a local Ray on 127.0.0.1)"),
    EnvVar("ATENDE_SECRET_KEY", "secret_key", _secret, "at least 32 random characters signing tokens (required by serve; dev generates one)"),
    EnvVar("ATENDE_MASTER_KEY", "master_key", _secret, "at least 32 random characters wrapping every tenant's data key (secrets at rest); required by serve, worker, supervisor; dev generates and keeps one"),
    EnvVar("ATENDE_PREVIOUS_MASTER_KEYS", "previous_master_keys", _secrets, "comma-separated earlier master keys, still unwrapping data keys until `atende keys rotate` re-wraps them"),
    EnvVar("ATENDE_PREVIOUS_SECRET_KEYS", "previous_secret_keys", _secrets, "comma-separated earlier signing keys, still accepted while tokens signed with them expire (key rotation)"),
    EnvVar("ATENDE_ACCESS_TOKEN_TTL", "access_token_ttl_s", _int_range(60, 86400), "access token lifetime in seconds (default 900)"),
    EnvVar("ATENDE_API_RATE_PER_MIN", "api_rate_per_min", _int_range(10, 1_000_000), "API requests per user per minute before 429 (default 1200)"),
    EnvVar("ATENDE_WEBHOOK_RATE_PER_MIN", "webhook_rate_per_min", _int_range(10, 1_000_000), "provider webhook deliveries per connection per minute before 429 (default 6000)"),
    EnvVar("ATENDE_STREAM_SHARDS", "stream_shards", _int_range(1, 1024), "inbound stream shards; change only on an empty pipeline (default 4)"),
    EnvVar("ATENDE_SESSIONS_PER_HOST", "sessions_per_host", _int_range(1, 5000), "WhatsApp sessions per Ray session host (default 250)"),
    EnvVar("ATENDE_CORS_ORIGINS", "cors_origins", _csv, "comma-separated origins allowed by CORS (default: none)"),
    EnvVar("ATENDE_MEDIA_STORE", "media_store", _choice("file", "s3"), "where media files live: file (a directory shared by API and session hosts) or s3 (default file)"),
    EnvVar("ATENDE_MEDIA_DIR", "media_dir", Path, "directory of the file media store (default <ATENDE_DATA_DIR>/media)"),
    EnvVar("ATENDE_MEDIA_MAX_MB", "media_max_mb", _int_range(1, 100), "largest media file in MiB, below WhatsApp's own per-kind limits (default 100)"),
    EnvVar("ATENDE_S3_ENDPOINT", "s3_endpoint", _url("http", "https"), "S3-compatible endpoint of the s3 media store (e.g. https://s3.amazonaws.com)"),
    EnvVar("ATENDE_S3_BUCKET", "s3_bucket", str, "bucket of the s3 media store"),
    EnvVar("ATENDE_S3_ACCESS_KEY", "s3_access_key", str, "access key of the s3 media store"),
    EnvVar("ATENDE_S3_SECRET_KEY", "s3_secret_key", str, "secret key of the s3 media store"),
    EnvVar("ATENDE_S3_REGION", "s3_region", str, "region of the s3 media store (default us-east-1)"),
)  # fmt: skip
