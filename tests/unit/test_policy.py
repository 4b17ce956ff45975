"""The restart policy, exhaustively: every reason under every restart type, intensity, backoff, reset."""

from __future__ import annotations

import itertools

import pytest

from supervisor.policy import (
    Action,
    DisconnectReason,
    RestartPolicy,
    RestartType,
    SessionHistory,
    backoff_delay,
    decide,
    reason_from,
)
from supervisor.wire import SessionState

R = DisconnectReason
ABNORMAL = [R.NETWORK, R.SERVER_ERROR, R.CRASHED, R.RESTART_REQUIRED]
QUARANTINE = [R.BANNED, R.OUTDATED, R.REPLACED]


@pytest.mark.parametrize("restart", list(RestartType))
@pytest.mark.parametrize("reason", list(DisconnectReason))
def test_every_reason_under_every_restart_type(restart: RestartType, reason: DisconnectReason) -> None:
    decision = decide(RestartPolicy(restart=restart), reason, SessionHistory(), now=100.0)
    if reason is R.STOPPED:
        expected = (Action.STOP, SessionState.STOPPED)
    elif reason is R.LOGGED_OUT:
        expected = (Action.STOP, SessionState.LOGGED_OUT)
    elif reason in QUARANTINE:
        expected = (Action.QUARANTINE, SessionState.QUARANTINED)
    elif reason is R.TEMP_BANNED:
        expected = (Action.RESTART, SessionState.QUARANTINED)
    elif restart is RestartType.TEMPORARY:
        expected = (Action.STOP, SessionState.STOPPED)
    elif reason is R.RESTART_REQUIRED:
        expected = (Action.RESTART, SessionState.RECONNECTING)
    else:
        assert reason in ABNORMAL
        expected = (Action.RESTART, SessionState.BACKOFF)
    assert (decision.action, decision.state) == expected
    assert decision.alert == (reason in (R.LOGGED_OUT, R.TEMP_BANNED, *QUARANTINE))


def test_logged_out_never_restarts_and_forgets_history() -> None:
    history = SessionHistory(restarts=(1.0, 2.0), attempt=2)
    decision = decide(RestartPolicy(), R.LOGGED_OUT, history, now=3.0)
    assert decision.action is Action.STOP
    assert decision.history == SessionHistory()


def test_replaced_is_quarantined_not_restarted() -> None:
    for attempt in range(10):
        decision = decide(RestartPolicy(), R.REPLACED, SessionHistory(attempt=attempt), now=float(attempt))
        assert decision.action is Action.QUARANTINE


def test_temporary_ban_waits_for_its_expiry() -> None:
    decision = decide(RestartPolicy(), R.TEMP_BANNED, SessionHistory(), now=10.0, ban_until=70.0)
    assert decision.delay_s == pytest.approx(60.0)
    expired = decide(RestartPolicy(), R.TEMP_BANNED, SessionHistory(), now=80.0, ban_until=70.0)
    assert expired.delay_s == 0.0


@pytest.mark.parametrize(("max_restarts", "within"), list(itertools.product([0, 1, 3, 5], [1.0, 10.0, 60.0])))
def test_crash_loop_gives_up_after_the_intensity_limit(max_restarts: int, within: float) -> None:
    policy = RestartPolicy(max_restarts=max_restarts, within_s=within)
    history = SessionHistory()
    now = 0.0
    for _ in range(max_restarts):
        decision = decide(policy, R.CRASHED, history, now=now)
        assert decision.action is Action.RESTART
        history = decision.history
        now += within / (max_restarts + 1)
    decision = decide(policy, R.CRASHED, history, now=now)
    assert decision.action is Action.GIVE_UP
    assert decision.state is SessionState.GAVE_UP
    assert decision.alert


def test_restarts_spread_out_in_time_never_give_up() -> None:
    policy = RestartPolicy(max_restarts=3, within_s=10.0)
    history = SessionHistory()
    for i in range(50):
        decision = decide(policy, R.NETWORK, history, now=i * 4.0)
        assert decision.action is Action.RESTART
        history = decision.history
        assert len(history.restarts) <= 3


def test_backoff_doubles_up_to_the_cap_with_no_jitter() -> None:
    policy = RestartPolicy(backoff_min_s=0.5, backoff_max_s=8.0, jitter=0.0, max_restarts=100, within_s=1.0)
    history = SessionHistory()
    delays = []
    for i in range(7):
        decision = decide(policy, R.NETWORK, history, now=i * 10.0)
        delays.append(decision.delay_s)
        history = decision.history
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 0.75, 0.999])
@pytest.mark.parametrize("attempt", [0, 1, 5, 40])
def test_jitter_stays_within_its_band(draw: float, attempt: int) -> None:
    policy = RestartPolicy(backoff_min_s=1.0, backoff_max_s=30.0, jitter=0.2)
    base = min(30.0, 2.0**attempt)
    assert base * 0.8 <= backoff_delay(policy, attempt, draw) <= base * 1.2


def test_quiet_period_resets_backoff_and_intensity() -> None:
    policy = RestartPolicy(max_restarts=2, within_s=1000.0, jitter=0.0, reset_after_s=60.0)
    history = SessionHistory(restarts=(1.0, 2.0), attempt=6)
    assert decide(policy, R.NETWORK, history, now=3.0).action is Action.GIVE_UP
    healthy = decide(policy, R.NETWORK, history, now=3.0, connected_for_s=61.0)
    assert healthy.action is Action.RESTART
    assert healthy.delay_s == policy.backoff_min_s
    assert healthy.history == SessionHistory((3.0,), 1)


def test_transient_restarts_only_abnormal_exits() -> None:
    policy = RestartPolicy(restart=RestartType.TRANSIENT)
    for reason in ABNORMAL:
        assert decide(policy, reason, SessionHistory(), now=0.0).action is Action.RESTART
    assert decide(policy, R.STOPPED, SessionHistory(), now=0.0).action is Action.STOP


def test_restart_required_reconnects_at_once_but_counts() -> None:
    decision = decide(RestartPolicy(), R.RESTART_REQUIRED, SessionHistory(attempt=3), now=5.0)
    assert decision.delay_s == 0.0
    assert decision.history.restarts == (5.0,)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_restarts": -1}, {"within_s": 0}, {"backoff_min_s": 2, "backoff_max_s": 1}, {"jitter": 1.0},
     {"reset_after_s": 0}],
)  # fmt: skip
def test_invalid_policies_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="required"):
        RestartPolicy(**kwargs)  # type: ignore[arg-type]


def test_unknown_reasons_count_as_crashes() -> None:
    assert reason_from("network") is R.NETWORK
    assert reason_from("???") is R.CRASHED
    assert reason_from(None) is R.CRASHED
