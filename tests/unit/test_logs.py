from __future__ import annotations

import json
import logging

from saas.logs import ConsoleFormatter, JsonFormatter, bind
from saas.observability import _tag_event, init_sentry
from saas.settings import Settings


def _record(message: str, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord("atende.test", logging.INFO, __file__, 1, message, None, None)
    record.fields = fields
    return record


def test_json_line_carries_bound_context_and_fields() -> None:
    with bind(request_id="req-12345678", tenant="acme", user=7):
        line = JsonFormatter().format(_record("ticket opened", ticket=42))
    data = json.loads(line)
    assert data["event"] == "ticket opened"
    assert data["level"] == "info"
    assert (data["request_id"], data["tenant"], data["user"], data["ticket"]) == (
        "req-12345678",
        "acme",
        7,
        42,
    )
    assert "\n" not in line


def test_context_does_not_leak_out_of_the_block() -> None:
    with bind(request_id="req-12345678"):
        pass
    assert "request_id" not in json.loads(JsonFormatter().format(_record("x")))


def test_console_line_is_readable() -> None:
    with bind(tenant="acme"):
        text = ConsoleFormatter().format(_record("hello", n=1))
    assert "INFO" in text and "hello" in text and "tenant=acme" in text and "n=1" in text


def test_sentry_is_silent_without_dsn() -> None:
    assert init_sentry(Settings()) is False


def test_sentry_events_are_tagged_with_the_tenant() -> None:
    with bind(tenant="acme", request_id="req-12345678"):
        event = _tag_event({}, None)
    assert event["tags"] == {"tenant": "acme", "request_id": "req-12345678"}


async def test_metrics_sink_keeps_counts_when_a_flush_fails() -> None:
    import contextlib

    from redis.asyncio import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    from supervisor.metrics import MetricsSink

    sink = MetricsSink("p")
    sink.inc("atende_router_events_total", ("stored",), 3)
    sink.set_state("atende_session_state", ("1", "2"), "CONNECTED")
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)  # nothing listens there
    try:
        with contextlib.suppress(RedisConnectionError, OSError):
            await sink.flush(unreachable)
    finally:
        await unreachable.aclose()
    sink.inc("atende_router_events_total", ("stored",), 2)
    assert sink._counts[("atende_router_events_total", "stored")] == 5
    assert sink._gauges[("atende_session_state", "1|2")] == "CONNECTED"
