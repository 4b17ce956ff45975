"""Durable timers in one Redis sorted set: a chatbot menu that times out, a snoozed ticket that wakes up, a queue
to distribute again.

Guarantees:

* A timer is a *hint*: its handler re-reads the database and does nothing if the state moved on, so firing early,
  late or twice is harmless. That is why a timer is scheduled *before* the transaction that needs it commits (a
  timer whose transaction rolled back finds nothing to do), and why ``schedule`` keeps the earlier of two due
  times (``ZADD LT``): a handler that finds it is too early asks ``done`` to fire it again later.
* Claiming is atomic across router replicas and crash-safe: ``claim_due`` moves due members to a lease score
  in the future instead of removing them; ``done`` removes a member only if it still has the lease score it was
  claimed with (so a re-schedule that happened meanwhile survives). A router that dies mid-handler leaves the
  member to be claimed again when the lease runs out.

Members are ``<tenant id>:<kind>:<subject>``; the key has a hash tag so it lives on one cluster slot.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis

from supervisor.streams import StreamKeys

__all__ = ["Timer", "claim_due", "done", "schedule", "schedule_all", "timers_key"]

# KEYS[1] the set; ARGV[1] now, ARGV[2] lease until, ARGV[3] max members. Returns the claimed members.
_CLAIM = """
local due = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do redis.call('zadd', KEYS[1], ARGV[2], member) end
return due
"""
# KEYS[1] the set; ARGV[1] member, ARGV[2] the lease score it was claimed with, ARGV[3] when to fire again ('' =
# never). Untouched since the claim: removed, or moved to the new time. Scheduled meanwhile: left as scheduled.
_DONE = """
local score = redis.call('zscore', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then return redis.call('zrem', KEYS[1], ARGV[1]) end
redis.call('zadd', KEYS[1], ARGV[3], ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class Timer:
    tenant_id: int
    kind: str
    subject: str
    lease: float  # the score it was claimed with; pass back to ``done``

    @property
    def member(self) -> str:
        return f"{self.tenant_id}:{self.kind}:{self.subject}"


def timers_key(keys: StreamKeys) -> str:
    return f"{keys.prefix}:timers:{{timers}}"


async def schedule(redis: Redis, keys: StreamKeys, tenant_id: int, kind: str, subject: object, due: datetime) -> None:
    """Make sure ``kind:subject`` of the tenant fires at ``due`` or earlier."""
    await schedule_all(redis, keys, tenant_id, [(kind, str(subject), due)])


async def schedule_all(redis: Redis, keys: StreamKeys, tenant_id: int,
                       timers: Iterable[tuple[str, str, datetime]]) -> None:  # fmt: skip
    """:func:`schedule` for many ``(kind, subject, due)`` at once, in one round trip (the earliest due of each)."""
    due: dict[str, float] = {}
    for kind, subject, at in timers:
        member = f"{tenant_id}:{kind}:{subject}"
        due[member] = min(due.get(member, at.timestamp()), at.timestamp())
    if due:
        await redis.zadd(timers_key(keys), due, lt=True)  # LT still adds missing members


async def claim_due(redis: Redis, keys: StreamKeys, *, lease_s: float = 60.0, limit: int = 200,
                    now: float | None = None) -> list[Timer]:  # fmt: skip
    """Claim up to ``limit`` due timers for ``lease_s`` seconds."""
    at = time.time() if now is None else now
    lease = round(at + lease_s, 3)
    members: list[bytes] = await redis.eval(_CLAIM, 1, timers_key(keys), str(at), str(lease), str(limit))
    timers = []
    for raw in members:
        tenant, kind, subject = raw.decode().split(":", 2)
        timers.append(Timer(int(tenant), kind, subject, lease))
    return timers


async def done(redis: Redis, keys: StreamKeys, timer: Timer, *, again_at: datetime | None = None) -> None:
    """Forget a handled timer, or make it fire again at ``again_at`` (a handler that found it too early) — unless
    it was scheduled meanwhile, which wins. (A handler must not reschedule its own timer with :func:`schedule`:
    ``ZADD LT`` cannot move it past its claim lease.)"""
    again = "" if again_at is None else str(again_at.timestamp())
    await redis.eval(_DONE, 1, timers_key(keys), timer.member, str(timer.lease), again)
