"""Structured logs: one JSON object per line in production, a readable line in ``atende dev``.

Every line carries the request id, tenant and user when they are known: they live in a context
variable bound by the request observer (and by workers), so code just calls ``logger.info(...)``.
Extra fields go in ``extra={"fields": {...}}``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from tenants.context import current_tenant

__all__ = ["bind", "configure_logging", "log_context", "update"]

_context: ContextVar[dict[str, Any] | None] = ContextVar("atende_log_context", default=None)


def log_context() -> dict[str, Any]:
    """What is bound for the running task (request id, tenant, user ...), plus the tenant context."""
    fields = dict(_context.get() or {})
    tenant = current_tenant()
    if tenant is not None:
        fields.setdefault("tenant", tenant.slug)
    return fields


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add fields to every log line (and Sentry event) emitted inside the block."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def update(**fields: Any) -> None:
    """Add fields to the current binding (e.g. the tenant once a request is authenticated)."""
    current = _context.get()
    if current is not None:
        current.update(fields)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        line.update(log_context())
        line.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = {**log_context(), **(getattr(record, "fields", None) or {})}
        tail = " ".join(f"{k}={v}" for k, v in fields.items())
        text = f"{ts} {record.levelname:<7} {record.name}: {record.getMessage()}" + (f"  {tail}" if tail else "")
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger (ours, uvicorn's, asyncio's) through one stderr handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # The request observer writes one line per request; uvicorn's access log would double it, and httpx logs
    # every request our clients make (the simulator CLI, health probes) at INFO.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
