"""Atomic rate limits in Redis, correct across any number of API workers.

Each limit is a fixed window counter changed by one Lua script (check and increment in one step, so two
workers can never both let the 11th attempt through). Keys carry a hash tag so each lives on one cluster slot.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis

from tenants.errors import AtendeError

__all__ = ["LOGIN_ACCOUNT", "LOGIN_IP", "Limit", "RateLimited", "check", "hit", "login_attempt", "reset"]

# KEYS[1] counter; ARGV[1] limit, ARGV[2] window seconds, ARGV[3] 1 to count this attempt.
# Returns {allowed (1/0), seconds until the window ends}.
_SCRIPT = """
local count = tonumber(redis.call('get', KEYS[1]) or '0')
local ttl = redis.call('ttl', KEYS[1])
if count >= tonumber(ARGV[1]) then
  return {0, ttl > 0 and ttl or tonumber(ARGV[2])}
end
if ARGV[3] == '1' then
  count = redis.call('incr', KEYS[1])
  if count == 1 then redis.call('expire', KEYS[1], ARGV[2]) ttl = tonumber(ARGV[2]) end
end
return {1, ttl > 0 and ttl or tonumber(ARGV[2])}
"""


class RateLimited(AtendeError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    max_events: int
    window_s: int

    def key(self, prefix: str, subject: str) -> str:
        return f"{prefix}:rl:{self.name}:{{{subject}}}"


LOGIN_ACCOUNT = Limit("login-account", 10, 15 * 60)  # failed logins per tenant + e-mail
LOGIN_IP = Limit("login-ip", 100, 15 * 60)  # failed logins per client address


async def _run(redis: Redis, key: str, limit: Limit, count: bool) -> tuple[bool, int]:
    allowed, retry_after = await redis.eval(_SCRIPT, 1, key, str(limit.max_events), str(limit.window_s),
                                            "1" if count else "0")  # fmt: skip
    return bool(allowed), int(retry_after)


async def check(redis: Redis, prefix: str, limit: Limit, subject: str) -> None:
    """Raise ``RateLimited`` (with ``retry_after``) if ``subject`` has used up ``limit``; counts nothing."""
    allowed, retry_after = await _run(redis, limit.key(prefix, subject), limit, count=False)
    if not allowed:
        raise RateLimited(f"too many attempts; retry in {retry_after} s", retry_after=retry_after)


async def hit(redis: Redis, prefix: str, limit: Limit, subject: str) -> None:
    """Count one event against ``limit``; raise ``RateLimited`` if it was already used up."""
    allowed, retry_after = await _run(redis, limit.key(prefix, subject), limit, count=True)
    if not allowed:
        raise RateLimited(f"too many attempts; retry in {retry_after} s", retry_after=retry_after)


async def reset(redis: Redis, prefix: str, limit: Limit, subject: str) -> None:
    await redis.delete(limit.key(prefix, subject))


@contextlib.asynccontextmanager
async def login_attempt(redis: Redis, prefix: str, *, account: str, address: str) -> AsyncIterator[None]:
    """Count a login attempt against the account and the address *before* the password is checked (strict under
    concurrency: the 11th attempt is refused whatever the timing); a successful login resets the account."""
    await hit(redis, prefix, LOGIN_ACCOUNT, account)
    await hit(redis, prefix, LOGIN_IP, address)
    yield
    await reset(redis, prefix, LOGIN_ACCOUNT, account)
