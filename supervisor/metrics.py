"""Cross-process metrics: session hosts and routers count in memory and flush to Redis once a second;
the API renders everything on ``/metrics``.

Why not Prometheus' own client in each process: session hosts are Ray actors and routers are separate
processes that come and go; operators scrape one endpoint (the API). Counters are ``HINCRBYFLOAT`` on one
hash per metric, so several writers add up correctly. Labels are bounded: tenant id, connection id, a
state out of a fixed set, a result out of a fixed set.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

__all__ = ["BUCKETS", "METRICS", "MetricSpec", "MetricsSink", "read_metrics"]

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("atende_session_messages_in_total", "counter", "Inbound events appended per session.", ("tenant", "connection")),
        MetricSpec("atende_session_messages_out_total", "counter", "Messages sent per session.", ("tenant", "connection")),
        MetricSpec("atende_session_send_errors_total", "counter", "Failed sends per session.", ("tenant", "connection")),
        MetricSpec("atende_session_restarts_total", "counter", "Session restarts.", ("tenant", "connection")),
        MetricSpec("atende_session_state", "gauge", "1 for the session's current state.", ("tenant", "connection", "state")),
        MetricSpec("atende_session_send_latency_seconds", "histogram", "Time to send one message.", ("tenant", "connection")),
        MetricSpec("atende_router_batch_seconds", "histogram", "Time to apply one tenant batch.", ()),
        MetricSpec("atende_router_events_total", "counter", "Inbound events by outcome.", ("result",)),
    )
}  # fmt: skip


def _key(prefix: str, name: str) -> str:
    return f"{prefix}:metrics:{{{name}}}"


class MetricsSink:
    """Buffers increments in memory; ``flush`` writes them in one pipeline."""

    __slots__ = ("_counts", "_gauges", "prefix")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._counts: defaultdict[tuple[str, str], float] = defaultdict(float)
        self._gauges: dict[tuple[str, str], str] = {}

    def inc(self, name: str, labels: tuple[str, ...] = (), value: float = 1.0) -> None:
        self._counts[(name, "|".join(labels))] += value

    def observe(self, name: str, labels: tuple[str, ...], seconds: float) -> None:
        base = "|".join(labels)
        index = bisect.bisect_left(BUCKETS, seconds)
        le = str(BUCKETS[index]) if index < len(BUCKETS) else "+Inf"
        self._counts[(name, f"{base}|le={le}")] += 1
        self._counts[(name, f"{base}|sum")] += seconds

    def set_state(self, name: str, labels: tuple[str, ...], state: str) -> None:
        """A gauge that is 1 for one state of a fixed set: stored as ``labels -> state``."""
        self._gauges[(name, "|".join(labels))] = state

    async def flush(self, redis: Redis) -> None:
        if not self._counts and not self._gauges:
            return
        counts, self._counts = self._counts, defaultdict(float)
        gauges, self._gauges = self._gauges, {}
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for (name, field), value in counts.items():
                    _ = pipe.hincrbyfloat(_key(self.prefix, name), field, value)
                for (name, field), state in gauges.items():
                    _ = pipe.hset(_key(self.prefix, name), field, state)
                await pipe.execute()
        except BaseException:
            # Keep what could not be written (a counter must never lose increments): merge it back for the next
            # flush; newer gauge values win over the ones we failed to write.
            for key, value in counts.items():
                self._counts[key] += value
            self._gauges = {**gauges, **self._gauges}
            raise


async def read_metrics(redis: Redis, prefix: str, names: Iterable[str] = METRICS) -> str:
    """Render the stored metrics in the Prometheus text format."""
    lines: list[str] = []
    for name in names:
        spec = METRICS[name]
        lines.append(f"# HELP {name} {spec.help}")
        lines.append(f"# TYPE {name} {spec.kind}")
        if spec.kind == "gauge":
            current = await redis.hgetall(_key(prefix, name))
            for labels, state in sorted(current.items()):
                values = [*_text(labels).split("|"), _text(state)]
                lines.append(f"{name}{{{_labels(spec.labels, values)}}} 1")
            continue
        stored = await redis.hgetall(_key(prefix, name))
        if spec.kind == "counter":
            for field, value in sorted(stored.items()):
                values = _text(field).split("|") if spec.labels else []
                lines.append(f"{name}{_braced(spec.labels, values)} {float(value)}")
            continue
        series: defaultdict[str, dict[str, float]] = defaultdict(dict)
        for field, value in stored.items():
            base, _sep, tail = _text(field).rpartition("|")
            series[base][tail] = float(value)
        for base, parts in sorted(series.items()):
            values = base.split("|") if spec.labels else []
            cumulative = 0.0
            for bound in [*map(str, BUCKETS), "+Inf"]:
                cumulative += parts.get(f"le={bound}", 0.0)
                lines.append(f"{name}_bucket{{{_labels((*spec.labels, 'le'), [*values, bound])}}} {cumulative}")
            lines.append(f"{name}_count{_braced(spec.labels, values)} {cumulative}")
            lines.append(f"{name}_sum{_braced(spec.labels, values)} {parts.get('sum', 0.0)}")
    return "\n".join(lines) + "\n"


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=False))


def _braced(names: tuple[str, ...], values: list[str]) -> str:
    return f"{{{_labels(names, values)}}}" if names else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
