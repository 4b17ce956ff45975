"""Restart policy as data, and the pure function that decides what a session does after it stops.

Modelled on OTP supervisors: a restart *type* (permanent: always restart; transient: restart only after an
abnormal exit; temporary: never), an *intensity* (at most ``max_restarts`` in ``within_s`` seconds, then
give up and alert), exponential backoff with jitter (``min * 2**attempt``, capped, +/- ``jitter``), and a
reset of the attempt counter after ``reset_after_s`` of healthy connection.

The disconnect reason decides before the policy does: a logged-out session waits for a new pairing, a
banned, outdated or replaced one is quarantined (restarting a replaced session would make two
connections kick each other forever), a temporary ban waits until its expiry, "restart required" after
pairing reconnects at once. No I/O here: the host feeds in the facts and persists what comes out.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from supervisor.wire import SessionState

__all__ = ["Action", "Decision", "DisconnectReason", "RestartPolicy", "RestartType", "SessionHistory", "decide"]


class RestartType(enum.StrEnum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class DisconnectReason(enum.StrEnum):
    NETWORK = "network"  # connection lost, keep-alive timeout, Baileys 408/428
    SERVER_ERROR = "server_error"  # 500/503 from the provider, server restart
    RESTART_REQUIRED = "restart_required"  # Baileys 515 after pairing
    CRASHED = "crashed"  # the driver raised
    LOGGED_OUT = "logged_out"  # 401 / LoggedOut / logout.instance / QR attempts exhausted
    TEMP_BANNED = "temp_banned"  # 402 with an expiry
    BANNED = "banned"  # 406 / TOS block
    OUTDATED = "outdated"  # 405 client outdated
    REPLACED = "replaced"  # 440 / StreamReplaced: another live connection uses these keys
    STOPPED = "stopped"  # we asked it to stop: a normal exit


class Action(enum.StrEnum):
    RESTART = "restart"
    STOP = "stop"
    QUARANTINE = "quarantine"
    GIVE_UP = "give_up"


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    restart: RestartType = RestartType.PERMANENT
    max_restarts: int = 5
    within_s: float = 60.0
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    jitter: float = 0.2  # +/- fraction of the delay
    reset_after_s: float = 120.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or self.within_s <= 0 or self.backoff_min_s < 0:
            raise ValueError("max_restarts >= 0, within_s > 0 and backoff_min_s >= 0 are required")
        if self.backoff_max_s < self.backoff_min_s or not 0 <= self.jitter < 1 or self.reset_after_s <= 0:
            raise ValueError("backoff_max_s >= backoff_min_s, 0 <= jitter < 1 and reset_after_s > 0 are required")


@dataclass(frozen=True, slots=True)
class SessionHistory:
    """What the policy remembers about one session: when it restarted, and its backoff attempt."""

    restarts: tuple[float, ...] = ()
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    state: SessionState
    delay_s: float = 0.0
    alert: bool = False
    why: str = ""
    history: SessionHistory = field(default_factory=SessionHistory)


_ABNORMAL = frozenset({DisconnectReason.NETWORK, DisconnectReason.SERVER_ERROR, DisconnectReason.CRASHED,
                       DisconnectReason.RESTART_REQUIRED})  # fmt: skip


def backoff_delay(policy: RestartPolicy, attempt: int, jitter_draw: float) -> float:
    """Delay before restart number ``attempt`` (0-based); ``jitter_draw`` in [0, 1) comes from the caller's RNG."""
    base: float = min(policy.backoff_max_s, policy.backoff_min_s * float(2 ** min(attempt, 32)))
    return max(0.0, base * (1 + policy.jitter * (2 * jitter_draw - 1)))


def decide(
    policy: RestartPolicy,
    reason: DisconnectReason,
    history: SessionHistory,
    *,
    now: float,
    connected_for_s: float = 0.0,
    jitter_draw: float = 0.5,
    ban_until: float | None = None,
) -> Decision:
    """What to do after a session's connection ended for ``reason``.

    ``now`` is a monotonic clock reading, ``connected_for_s`` how long the connection that just ended was
    healthy (a long healthy run resets the backoff), ``ban_until`` the monotonic time a temporary ban ends.
    """
    if connected_for_s >= policy.reset_after_s:
        history = SessionHistory()

    if reason is DisconnectReason.STOPPED:
        return Decision(Action.STOP, SessionState.STOPPED, why="stopped on request", history=history)
    if reason is DisconnectReason.LOGGED_OUT:
        return Decision(Action.STOP, SessionState.LOGGED_OUT, alert=True, why="logged out: pair again",
                        history=SessionHistory())  # fmt: skip
    if reason in (DisconnectReason.BANNED, DisconnectReason.OUTDATED, DisconnectReason.REPLACED):
        return Decision(Action.QUARANTINE, SessionState.QUARANTINED, alert=True, why=f"quarantined: {reason}",
                        history=history)  # fmt: skip
    if reason is DisconnectReason.TEMP_BANNED:
        # One attempt after the ban ends; the attempt does not count against the intensity limit.
        delay = max(0.0, (ban_until - now) if ban_until is not None else policy.backoff_max_s)
        return Decision(Action.RESTART, SessionState.QUARANTINED, delay_s=delay, alert=True,
                        why="temporarily banned", history=history)  # fmt: skip

    if policy.restart is RestartType.TEMPORARY or (policy.restart is RestartType.TRANSIENT and reason not in _ABNORMAL):
        return Decision(Action.STOP, SessionState.STOPPED, why=f"{policy.restart} session ended: {reason}",
                        history=history)  # fmt: skip

    recent = tuple(t for t in history.restarts if now - t < policy.within_s)
    if len(recent) >= policy.max_restarts:
        return Decision(Action.GIVE_UP, SessionState.GAVE_UP, alert=True,
                        why=f"{len(recent)} restarts within {policy.within_s:g}s", history=SessionHistory(recent))  # fmt: skip
    # "Restart required" (after pairing) reconnects at once, but still counts against the intensity.
    delay = 0.0 if reason is DisconnectReason.RESTART_REQUIRED else backoff_delay(policy, history.attempt, jitter_draw)
    return Decision(
        Action.RESTART,
        SessionState.BACKOFF if delay > 0 else SessionState.RECONNECTING,
        delay_s=delay,
        why=f"restart after {reason}",
        history=SessionHistory((*recent, now), history.attempt + 1),
    )


def reason_from(value: str | None, known: Sequence[str] = tuple(DisconnectReason)) -> DisconnectReason:
    """Parse a reason reported by a driver; unknown or missing reasons count as a crash."""
    return DisconnectReason(value) if value is not None and value in known else DisconnectReason.CRASHED
