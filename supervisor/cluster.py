"""Connecting to Ray and keeping the supervisor alive (``atende supervisor``)."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import ray

from supervisor.actors import NAMESPACE, get_or_create_supervisor
from supervisor.host import HostConfig

__all__ = ["connect_ray", "run_supervisor"]

logger = logging.getLogger("atende.supervisor")


def connect_ray(address: str | None) -> bool:
    """Join the cluster at ``address``, or start a local Ray bound to 127.0.0.1; True if we started it."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, namespace=NAMESPACE, logging_level=logging.WARNING, log_to_driver=True)
        return False
    ray.init(
        namespace=NAMESPACE,
        _node_ip_address="127.0.0.1",  # otherwise Ray binds to a non-loopback address
        include_dashboard=False,
        num_cpus=os.cpu_count() or 1,
        logging_level=logging.WARNING,
        log_to_driver=True,
        configure_logging=False,
    )
    return True


def run_supervisor(host_config: HostConfig, *, ray_address: str | None, sessions_per_host: int,
                   stop: threading.Event, status_every_s: float = 30.0) -> None:  # fmt: skip
    """Get-or-create the supervisor actor and keep its reconcile loop running until ``stop`` is set."""
    started_local = connect_ray(ray_address)
    supervisor: Any = get_or_create_supervisor(host_config, sessions_per_host)
    logger.info("supervisor running (ray %s)", "local on 127.0.0.1" if started_local else ray_address)
    last_status = 0.0
    try:
        while not stop.is_set():
            try:
                ray.get(supervisor.ensure_running.remote(), timeout=60)
                last_status += 2.0
                if last_status >= status_every_s:
                    last_status = 0.0
                    status = ray.get(supervisor.status.remote(), timeout=30)
                    sessions = sum(len(v) for v in status["hosts"].values())
                    logger.info("%s hosts, %s sessions, %s reconciles", len(status["hosts"]), sessions,
                                status["reconciles"])  # fmt: skip
            except Exception:
                logger.exception("supervisor keep-alive failed")
            stop.wait(2.0)
    finally:
        if started_local:
            ray.shutdown()  # a local cluster (and its detached actors) ends with us
