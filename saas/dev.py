"""``atende dev``: the whole product on one machine with nothing running.

Without ``DATABASE_URL``/``REDIS_URL`` it starts embedded PostgreSQL and Redis under the data directory
(``.atende/`` by default); then it migrates, makes sure the demo tenant exists and serves. Ctrl-C (or
SIGTERM) stops everything it started. A second run reuses the data — and the generated demo password,
which is kept in ``<data_dir>/demo-password`` (mode 0600) so it can be printed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from saas.embedded import embedded_postgres, embedded_redis
from saas.settings import Settings

__all__ = ["DEMO_ADMIN", "DEMO_SLUG", "ensure_demo_service", "ensure_demo_tenant", "run_dev"]

logger = logging.getLogger("atende.dev")

DEMO_SLUG = "demo"
DEMO_ADMIN = "admin@demo.local"


def _kept(settings: Settings, configured: str | None, name: str, make: Callable[[], str]) -> str:
    """A configured value, else one generated once and kept (mode 0600) in the data directory."""
    if configured:
        return configured
    stored = settings.data_dir / name
    if stored.exists():
        return stored.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    value = make()
    stored.touch(mode=0o600)
    stored.write_text(value + "\n")
    return value


def _secret_key(settings: Settings) -> str:
    """The signing key of ``atende dev``: kept so that tokens survive a restart."""
    return _kept(settings, settings.secret_key, "secret-key", lambda: secrets.token_urlsafe(48))


def _master_key(settings: Settings) -> str:
    """The master key of ``atende dev``: kept, or the stored (encrypted) credentials would become unreadable."""
    return _kept(settings, settings.master_key, "master-key", lambda: secrets.token_urlsafe(32))


def _demo_password(settings: Settings) -> str:
    """``ATENDE_DEMO_PASSWORD``, else a generated one that every later run prints again."""
    return _kept(settings, settings.demo_password, "demo-password", lambda: secrets.token_urlsafe(12))


async def ensure_demo_tenant(password: str) -> bool:
    """Create the demo tenant if missing, else make its admin's password ``password``; True if created."""
    from tenants.context import tenant_context
    from tenants.passwords import hash_password, verify_password
    from tenants.provisioning import create_tenant
    from tenants.tables import Tenant

    if not await Tenant.exists().where(Tenant.slug == DEMO_SLUG).run():
        await create_tenant(DEMO_SLUG, name="Demo Company", admin_email=DEMO_ADMIN, admin_password=password,
                            plan="pro")  # fmt: skip
        return True
    async with tenant_context(DEMO_SLUG) as session:
        current = await session.conn.fetchval("SELECT password_hash FROM users WHERE lower(email) = $1", DEMO_ADMIN)
        if current is None or not verify_password(current, password):
            await session.conn.execute(
                "UPDATE users SET password_hash = $2, token_version = token_version + 1, updated_at = now()"
                " WHERE lower(email) = $1",
                DEMO_ADMIN,
                hash_password(password),
            )
    return False


async def ensure_demo_service(connection_id: int) -> None:
    """The demo tenant's service setup, made once: two queues behind a chatbot menu, the admin in both (online
    while the inbox is open, so automatic distribution has someone), a greeting, farewell and satisfaction survey,
    a quick reply and two tags. Left alone when the tenant already has queues (the user may have changed them)."""
    from tenants.context import tenant_context

    async with tenant_context(DEMO_SLUG) as session:
        conn = session.conn
        if await conn.fetchval("SELECT count(*) FROM queues"):
            return
        admin = await conn.fetchval("SELECT id FROM users WHERE lower(email) = $1", DEMO_ADMIN)
        sales = await conn.fetchval(
            "INSERT INTO queues (name, color, greeting, strategy) VALUES ('Vendas', '#43a047',"
            " 'Você está na fila de Vendas. Já vamos te atender!', 'round_robin') RETURNING id"
        )
        support = await conn.fetchval(
            "INSERT INTO queues (name, color, greeting, strategy, return_on_offline) VALUES ('Suporte', '#1e88e5',"
            " 'Você está na fila de Suporte. Um momento, por favor.', 'least_busy', true) RETURNING id"
        )
        await conn.execute("INSERT INTO queue_members VALUES ($1, $3), ($2, $3)", sales, support, admin)
        await conn.execute("INSERT INTO queue_connections VALUES ($1, $3), ($2, $3)", sales, support, connection_id)
        await conn.execute("UPDATE connections SET greeting = 'Olá! Bem-vindo à Demo Company.' WHERE id = $1",
                           connection_id)  # fmt: skip
        await conn.execute(
            "UPDATE tenant_settings SET csat_enabled = true, farewell_message = 'Obrigado pelo contato!'"
        )
        await conn.execute(
            "INSERT INTO quick_replies (shortcut, body, scope, created_by) VALUES ('ola', '{{greeting}}, "
            "{{contact.first_name}}! Aqui é {{agent.first_name}}, como posso ajudar?', 'tenant', $1)",
            admin,
        )
        await conn.execute("INSERT INTO tags (name, color) VALUES ('VIP', '#8e24aa'), ('Reclamação', '#e53935')")


async def ensure_demo_connection(settings: Settings) -> int:
    """The demo tenant's simulator connection on ``ATENDE_DEMO_NUMBER``, set to run and pair afresh.

    A session parked by an earlier run (logged out, quarantined, gave up) is set to run again; stored
    credentials are kept, so it resumes without a new QR (the dev simulator pairs automatically if needed).
    """
    from saas.connections.service import create_connection
    from tenants.context import tenant_context

    async with tenant_context(DEMO_SLUG) as session:
        existing = await session.conn.fetchval(
            "SELECT id FROM connections WHERE business_number = $1", settings.demo_number
        )
        if existing is None:
            created = await create_connection(session, name="Demo WhatsApp", provider="simulator",
                                              business_number=settings.demo_number, endpoint=settings.simulator_url)  # fmt: skip
            existing = created.id
        else:
            await session.conn.execute(
                "UPDATE connections SET endpoint = $2, state = 'STOPPED' WHERE id = $1",
                existing, settings.simulator_url,
            )  # fmt: skip
            await session.conn.execute(
                "UPDATE public.session_registry SET desired_state = 'running', state = 'STOPPED', lease_owner = NULL"
                " WHERE tenant_id = $1 AND connection_id = $2",
                session.tenant.id, existing,
            )  # fmt: skip
    return int(existing)


async def _prepare(settings: Settings, password: str) -> None:
    from tenants import db
    from tenants.migrations import migrate_all

    assert settings.database_url is not None
    await db.start(settings.database_url, max_size=settings.migrate_concurrency + 1)
    try:
        report = await migrate_all(concurrency=settings.migrate_concurrency)
        if report.failed:
            raise RuntimeError(f"migrations failed: {[(r.schema, r.error) for r in report.failed]}")
        created = await ensure_demo_tenant(password)
        logger.info("demo tenant %s", "created" if created else "ready")
        await ensure_demo_service(await ensure_demo_connection(settings))
    finally:
        await db.stop()


def run_dev(settings: Settings) -> int:
    """Run until interrupted; returns the exit code."""
    from saas.server import run

    data_dir = settings.data_dir
    with contextlib.ExitStack() as stack:
        if not settings.database_url:
            logger.info("starting embedded PostgreSQL in %s", data_dir / "pg")
            database_url = stack.enter_context(embedded_postgres(data_dir / "pg"))
            settings = _replace(settings, database_url=database_url)
        if not settings.redis_url:
            logger.info("starting embedded Redis in %s", data_dir / "redis")
            redis_url = stack.enter_context(embedded_redis(data_dir / "redis"))
            settings = _replace(settings, redis_url=redis_url)
        password = _demo_password(settings)
        settings = _replace(settings, secret_key=_secret_key(settings), master_key=_master_key(settings))
        asyncio.run(_prepare(settings, password))
        base = f"http://{settings.host}:{settings.port}"
        banner = [
            "",
            f"  Atende is running at {base}",
            f"  health:  {base}/healthz   {base}/readyz   metrics: {base}/metrics   API docs: {base}/schema",
            f"  demo tenant: {DEMO_SLUG}   admin: {DEMO_ADMIN}   password: {password}",
            f"  inbox:   {base}/inbox   (log in as tenant {DEMO_SLUG})",
            f"  WhatsApp simulator: {settings.simulator_url}   demo business number: {settings.demo_number}",
            f"  try:     atende sim send --to {settings.demo_number} --from +5511988887777 --text 'Oi!'",
            f"  data:    {Path(data_dir).resolve()}   (Ctrl-C stops everything)",
            "",
        ]
        print("\n".join(banner), flush=True)
        stack.callback(_stop_children, _start_children(settings))
        with contextlib.suppress(KeyboardInterrupt):
            run(settings)
    logger.info("stopped")
    return 0


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": settings.database_url or "", "REDIS_URL": settings.redis_url or "",
        "ATENDE_SECRET_KEY": settings.secret_key or "", "ATENDE_MASTER_KEY": settings.master_key or "", "ATENDE_ENV": "dev", "ATENDE_LOG_FORMAT": settings.log_format,
        "ATENDE_SIMULATOR_URL": settings.simulator_url, "ATENDE_REDIS_PREFIX": settings.redis_prefix,
        "ATENDE_STREAM_SHARDS": str(settings.stream_shards), "ATENDE_MEDIA_DIR": str(settings.media_path.resolve()),
    })  # fmt: skip
    return env


def _start_children(settings: Settings) -> list[subprocess.Popen[bytes]]:
    """The simulator, the router and the supervisor, each its own process (and process group)."""
    env = _child_env(settings)
    children = []
    for verb in (["simulator", "--auto-pair"], ["worker"], ["supervisor"]):
        children.append(subprocess.Popen([sys.executable, "-m", "saas.cli", *verb], env=env, start_new_session=True,
                                         stdin=subprocess.DEVNULL))  # fmt: skip
    return children


def _stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)  # every verb stops cleanly on it (Ray's SIGTERM handler is noisy)
    deadline = time.monotonic() + 30
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _replace(settings: Settings, **changes: object) -> Settings:
    import msgspec

    return msgspec.structs.replace(settings, **changes)


if os.name != "posix":  # pragma: no cover - the embedded services need POSIX sockets
    raise ImportError("atende dev needs a POSIX system")
