"""The Ray actor tree: one named, detached ``Supervisor`` and the ``SessionHost`` actors it places sessions on.

A Ray actor process costs ~50-90 MB, so a session is an asyncio task inside a host, not an actor. Hosts
are named (``atende-host-N``, ``atende-host-t<tenant>`` for dedicated ones), detached and restarted by Ray
without limit; a restarted host gets its sessions back from the supervisor's next reconcile (its calls are
retried on the new incarnation) and takes their leases at once, because the lease owner is the host name.

Supervisor guarantees: the reconcile loop never dies (each step catches and logs its own errors), each step
is idempotent (``ensure`` states the whole desired set), and all state is rebuilt from the registry and the
named actors — so a restarted supervisor simply carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import defaultdict
from typing import Any

import ray

from supervisor.host import HostConfig, SessionHostCore
from supervisor.placement import place
from supervisor.registry import SessionSpec, desired_sessions, set_placement
from tenants import db

__all__ = ["NAMESPACE", "SUPERVISOR_NAME", "SessionHost", "Supervisor", "get_or_create_supervisor"]

logger = logging.getLogger("atende.supervisor")
NAMESPACE = "atende"
SUPERVISOR_NAME = "atende-supervisor"


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=1000)  # type: ignore[call-overload]
class SessionHost:
    """Ray wrapper of :class:`SessionHostCore` (which holds all the logic and is tested without Ray)."""

    def __init__(self, config: HostConfig) -> None:
        self.core = SessionHostCore(config)

    async def ensure(self, specs: list[SessionSpec]) -> dict[str, int]:
        return await self.core.ensure(specs)

    async def status(self) -> list[dict[str, Any]]:
        return self.core.status()

    async def pid(self) -> int:
        import os

        return os.getpid()

    async def shutdown(self) -> None:
        await self.core.shutdown()


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=100)  # type: ignore[call-overload]
class Supervisor:
    def __init__(self, host_config: HostConfig, sessions_per_host: int = 250, interval_s: float = 0.2) -> None:
        self.host_config = host_config
        self.sessions_per_host = sessions_per_host
        self.interval_s = interval_s
        self.hosts: dict[str, Any] = {}
        self.loop: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        self.reconciles = 0
        self.last_reconcile_s = 0.0

    async def ensure_running(self) -> bool:
        """Start the reconcile loop if it is not running (called by ``atende supervisor`` every few seconds)."""
        if self.loop is None or self.loop.done():
            if db.DB.pool is None:
                await db.start(self.host_config.database_url, max_size=3)
            self.loop = asyncio.create_task(self._run())
            return True
        return False

    async def _run(self) -> None:
        while True:
            try:
                await self.reconcile_once()
            except Exception as exc:
                self.last_error = repr(exc)
                logger.exception("reconcile failed")
            await asyncio.sleep(self.interval_s)

    def _host(self, name: str) -> Any:
        handle = self.hosts.get(name)
        if handle is None:
            config = dataclasses.replace(self.host_config, name=name)
            handle = SessionHost.options(name=name, namespace=NAMESPACE, lifetime="detached",  # type: ignore[attr-defined]
                                         get_if_exists=True).remote(config)  # fmt: skip
            self.hosts[name] = handle
        return handle

    async def reconcile_once(self) -> dict[str, Any]:
        started = time.perf_counter()
        specs = await desired_sessions()
        placement = place(specs, self.sessions_per_host)
        await set_placement(
            {s.registry_id: placement[s.registry_id] for s in specs if s.host != placement[s.registry_id]}
        )
        by_host: defaultdict[str, list[SessionSpec]] = defaultdict(list)
        for spec in specs:
            by_host[placement[spec.registry_id]].append(spec)
        names = sorted(set(by_host) | set(self.hosts))
        results = await asyncio.gather(*(self._ensure(name, by_host.get(name, [])) for name in names),
                                       return_exceptions=True)  # fmt: skip
        report = {
            name: (repr(r) if isinstance(r, BaseException) else r) for name, r in zip(names, results, strict=True)
        }
        self.reconciles += 1
        self.last_reconcile_s = time.perf_counter() - started
        return report

    async def _ensure(self, name: str, specs: list[SessionSpec]) -> dict[str, int]:
        result: dict[str, int] = await asyncio.wait_for(self._host(name).ensure.remote(specs), timeout=30)
        return result

    async def status(self) -> dict[str, Any]:
        hosts = {}
        for name in sorted(self.hosts):
            with contextlib.suppress(Exception):
                hosts[name] = await asyncio.wait_for(self.hosts[name].status.remote(), timeout=5)
        return {"hosts": hosts, "reconciles": self.reconciles, "last_reconcile_s": self.last_reconcile_s,
                "last_error": self.last_error}  # fmt: skip

    async def host_names(self) -> list[str]:
        return sorted(self.hosts)

    async def shutdown_hosts(self) -> None:
        """Stop the loop, stop every session cleanly and end the host actors (tests, operator tools)."""
        if self.loop is not None:
            self.loop.cancel()
        for name, handle in list(self.hosts.items()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(handle.shutdown.remote(), timeout=20)
            with contextlib.suppress(Exception):
                ray.kill(handle, no_restart=True)
            self.hosts.pop(name, None)


def get_or_create_supervisor(host_config: HostConfig, sessions_per_host: int = 250, interval_s: float = 0.2) -> Any:
    """The cluster's one supervisor (named, detached); created on first use."""
    return Supervisor.options(name=SUPERVISOR_NAME, namespace=NAMESPACE, lifetime="detached",  # type: ignore[attr-defined]
                              get_if_exists=True).remote(host_config, sessions_per_host, interval_s)  # fmt: skip
