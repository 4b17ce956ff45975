"""The ``atende`` command line. Every verb has ``--help``; settings come from the environment (see below)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from saas.logs import configure_logging
from saas.settings import ENV_VARS, Settings, SettingsError
from tenants.errors import AtendeError, InvalidInput

__all__ = ["main"]


def _env_help() -> str:
    lines = ["environment variables:"]
    lines += [f"  {v.name:<27} {v.help}" for v in ENV_VARS]
    return "\n".join(lines)


def _with_db(settings: Settings, work: Callable[[], Awaitable[int]]) -> int:
    """Run ``work`` with the database pool open."""
    from tenants import db

    settings.require("database_url")
    assert settings.database_url is not None

    async def run() -> int:
        await db.start(settings.database_url or "", max_size=max(settings.db_pool_size, settings.migrate_concurrency))
        try:
            return await work()
        finally:
            await db.stop()

    return asyncio.run(run())


# -- verbs ----------------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from saas.server import run

    settings.require("database_url", "redis_url")
    run(settings)
    return 0


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from saas.dev import run_dev

    return run_dev(settings)


def host_config(settings: Settings, name: str = "atende-host-0") -> Any:
    from supervisor.host import HostConfig

    settings.require("database_url", "redis_url", "master_key")
    assert settings.database_url is not None and settings.redis_url is not None
    return HostConfig(name=name, database_url=settings.database_url, redis_url=settings.redis_url,
                      redis_prefix=settings.redis_prefix, stream_shards=settings.stream_shards,
                      simulator_url=settings.simulator_url, master_key=settings.master_key or "",
                      previous_master_keys=settings.previous_master_keys, media_store=settings.media_store,
                      media_dir=str(settings.media_path.resolve()), s3_endpoint=settings.s3_endpoint,
                      s3_bucket=settings.s3_bucket, s3_access_key=settings.s3_access_key,
                      s3_secret_key=settings.s3_secret_key, s3_region=settings.s3_region,
                      media_max_bytes=settings.media_max_mb * 1024 * 1024)  # fmt: skip


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from saas.router.worker import run_worker

    settings.require("database_url", "redis_url")
    asyncio.run(run_worker(settings))
    return 0


def cmd_supervisor(args: argparse.Namespace, settings: Settings) -> int:
    import threading

    from supervisor.cluster import run_supervisor

    config = host_config(settings)
    stop = threading.Event()
    try:
        run_supervisor(
            config, ray_address=settings.ray_address, sessions_per_host=settings.sessions_per_host, stop=stop
        )
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from tenants.migrations import SchemaResult, migrate_all

    def progress(done: int, total: int, result: SchemaResult) -> None:
        if result.error:
            print(f"[{done}/{total}] {result.schema}: FAILED {result.error}", flush=True)
        elif result.applied or args.verbose:
            print(
                f"[{done}/{total}] {result.schema}: applied {', '.join(result.applied) or 'nothing'}",
                flush=True,
            )
        elif done % 100 == 0 or done == total:
            print(f"[{done}/{total}] tenants checked", flush=True)

    async def work() -> int:
        report = await migrate_all(concurrency=args.concurrency or settings.migrate_concurrency, progress=progress)
        applied = ", ".join(report.public.applied) or "up to date"
        print(f"public: {applied}", flush=True)
        failed = report.failed
        print(
            f"migrated public + {len(report.tenants)} tenant schemas in {report.seconds:.2f}s: "
            f"{report.applied_count} migrations applied, {len(failed)} failed",
            flush=True,
        )
        return 1 if failed else 0

    return _with_db(settings, work)


def _read_password(value: str) -> str:
    if value == "-":
        return sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("admin password: ")
    return value


def cmd_tenants_create(args: argparse.Namespace, settings: Settings) -> int:
    from tenants.provisioning import create_tenant

    password = _read_password(args.admin_password)

    async def work() -> int:
        info = await create_tenant(
            args.slug, name=args.name, admin_email=args.admin_email, admin_password=password, plan=args.plan
        )
        print(f"created tenant {info.slug} (id {info.id}, schema {info.schema}, plan {info.plan})")
        return 0

    return _with_db(settings, work)


def cmd_tenants_list(args: argparse.Namespace, settings: Settings) -> int:
    from tenants.provisioning import list_tenants

    async def work() -> int:
        tenants = await list_tenants()
        if args.json:
            for t in tenants:
                print(json.dumps({"id": t.id, "slug": t.slug, "name": t.name, "schema": t.schema, "plan": t.plan,
                                  "status": t.status, "created_at": t.created_at.isoformat()}))  # fmt: skip
            return 0
        print(f"{'SLUG':<24} {'STATUS':<10} {'PLAN':<12} {'SCHEMA':<28} NAME")
        for t in tenants:
            print(f"{t.slug:<24} {t.status:<10} {t.plan:<12} {t.schema:<28} {t.name}")
        return 0

    return _with_db(settings, work)


def _set_status(status: str) -> Callable[[argparse.Namespace, Settings], int]:
    def command(args: argparse.Namespace, settings: Settings) -> int:
        from tenants.provisioning import set_tenant_status

        async def work() -> int:
            await set_tenant_status(args.slug, status)
            print(f"tenant {args.slug} is now {status}")
            return 0

        return _with_db(settings, work)

    return command


def cmd_operators_create(args: argparse.Namespace, settings: Settings) -> int:
    from saas.platform.service import create_operator

    password = _read_password(args.password)

    async def work() -> int:
        operator_id = await create_operator(args.email, args.name, password)
        print(f"created platform operator {args.email} (id {operator_id})")
        return 0

    return _with_db(settings, work)


def _set_operator_active(active: bool) -> Callable[[argparse.Namespace, Settings], int]:
    def command(args: argparse.Namespace, settings: Settings) -> int:
        from saas.platform.service import set_operator_active

        async def work() -> int:
            await set_operator_active(args.email, active)
            print(f"operator {args.email} is now {'enabled' if active else 'disabled'}; its earlier tokens are revoked")
            return 0

        return _with_db(settings, work)

    return command


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from tenants.secrets import keys_rotate_main

    settings.require("master_key")
    return _with_db(settings, lambda: keys_rotate_main(settings.master_key or "", settings.previous_master_keys,
                                                       concurrency=args.concurrency or settings.migrate_concurrency,
                                                       verbose=args.verbose))  # fmt: skip


def cmd_bench_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from bench.ingest import run_ingest_bench

    result = run_ingest_bench(settings, tenants=args.tenants, messages=args.messages, phones=args.phones,
                              shards=args.shards, rate=args.rate)  # fmt: skip
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


def cmd_bench_sessions(args: argparse.Namespace, settings: Settings) -> int:
    from bench.sessions import run_sessions_bench

    result = run_sessions_bench(settings, sessions=args.sessions, per_host=args.per_host, tenants=args.tenants)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


def cmd_bench_inbox(args: argparse.Namespace, settings: Settings) -> int:
    from bench.inbox import run_inbox_bench

    result = run_inbox_bench(settings, tickets=args.tickets, requests=args.requests, seed=args.seed)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


def cmd_bench_tenants(args: argparse.Namespace, settings: Settings) -> int:
    from bench.tenants import run_bench

    result = run_bench(settings, tenants=args.tenants, concurrency=args.concurrency)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


# -- parser ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atende",
        description="Atende: multi-tenant customer service for WhatsApp.",
        epilog=_env_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name: str, help_: str, handler: Callable[[argparse.Namespace, Settings], int], into: Any = verbs
             ) -> argparse.ArgumentParser:  # fmt: skip
        sub: argparse.ArgumentParser = into.add_parser(name, help=help_, description=help_, epilog=_env_help(),
                                                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        sub.set_defaults(handler=handler)
        return sub

    for name, help_, handler in (
        ("serve", "Serve the API, portal and inbox (needs DATABASE_URL and REDIS_URL).", cmd_serve),
        (
            "dev",
            "Run everything locally: embedded PostgreSQL/Redis when no URLs are set, migrations, a demo tenant.",
            cmd_dev,
        ),
    ):
        sub = verb(name, help_, handler)
        sub.add_argument("--host", help="address to bind (default 127.0.0.1)")
        sub.add_argument("--port", type=int, help="port to listen on (default 8000)")

    verb("worker", "Route inbound WhatsApp events into tickets and relay outbound messages (needs DATABASE_URL, REDIS_URL).",
         cmd_worker)  # fmt: skip
    verb("supervisor", "Run the Ray supervisor of every WhatsApp session (local Ray on 127.0.0.1, or RAY_ADDRESS).",
         cmd_supervisor)  # fmt: skip

    from supervisor.simulator.cli import add_simulator_verbs

    add_simulator_verbs(verbs, epilog=_env_help())

    migrate = verb("migrate", "Migrate the public schema, then every tenant schema (resumable, parallel).",
                   cmd_migrate)  # fmt: skip
    migrate.add_argument("--concurrency", type=int, help="tenant schemas migrated at once (default 8)")
    migrate.add_argument("-v", "--verbose", action="store_true", help="print every tenant, not only changes")

    tenants = verb("tenants", "Create, list, suspend or resume tenants.", lambda a, s: 2)
    tenant_verbs = tenants.add_subparsers(dest="tenant_verb", metavar="ACTION", required=True)
    create = verb("create", "Provision a tenant: row, schema, migrations and its admin, all or nothing.",
                  cmd_tenants_create, tenant_verbs)  # fmt: skip
    create.add_argument("slug", help="2-40 chars: a-z, 0-9, _ ; starts with a letter (schema t_<slug>)")
    create.add_argument("--name", required=True, help="display name of the company")
    create.add_argument("--admin-email", required=True, help="e-mail of the first tenant admin")
    create.add_argument("--admin-password", required=True, help="8-128 characters; '-' reads it from stdin")
    create.add_argument("--plan", default="free", help="plan slug: free, pro or enterprise (default free)")
    listing = verb("list", "List tenants.", cmd_tenants_list, tenant_verbs)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    verb("suspend", "Suspend a tenant: its users and sessions get no access.", _set_status("suspended"),
         tenant_verbs).add_argument("slug")  # fmt: skip
    verb("resume", "Resume a suspended tenant.", _set_status("active"), tenant_verbs).add_argument("slug")

    operators = verb("operators", "Create, disable or enable platform operators (platform staff).", lambda a, s: 2)
    operator_verbs = operators.add_subparsers(dest="operator_verb", metavar="ACTION", required=True)
    add_operator = verb("create", "Add a platform operator (argon2id password).", cmd_operators_create, operator_verbs)
    add_operator.add_argument("email", help="the operator's e-mail (unique, case-insensitive)")
    add_operator.add_argument("--name", required=True, help="display name")
    add_operator.add_argument("--password", required=True, help="8-128 characters; '-' reads it from stdin")
    verb("disable", "Disable an operator and revoke its tokens.", _set_operator_active(False),
         operator_verbs).add_argument("email")  # fmt: skip
    verb("enable", "Enable an operator again (tokens issued before stay revoked).", _set_operator_active(True),
         operator_verbs).add_argument("email")  # fmt: skip

    keys = verb("keys", "Manage the master key that wraps every tenant's data key (secrets at rest).", lambda a, s: 2)
    key_verbs = keys.add_subparsers(dest="keys_verb", metavar="ACTION", required=True)
    rotate = verb("rotate", "Re-wrap every tenant data key with ATENDE_MASTER_KEY (resumable; a no-op when done). "
                  "Deploy the new key first, with the old one in ATENDE_PREVIOUS_MASTER_KEYS.", cmd_keys_rotate,
                  key_verbs)  # fmt: skip
    rotate.add_argument("--concurrency", type=int, help="tenants re-wrapped at once (default 8)")
    rotate.add_argument("-v", "--verbose", action="store_true", help="print every tenant")

    bench = verb("bench", "Benchmarks that print JSON.", lambda a, s: 2)
    bench_verbs = bench.add_subparsers(dest="bench_verb", metavar="BENCH", required=True)
    bt = verb("tenants", "Provisioning latency and re-migration time over many tenants, in a scratch database.",
              cmd_bench_tenants, bench_verbs)  # fmt: skip
    bt.add_argument("--tenants", type=int, default=1000, help="tenants to provision (default 1000)")
    bt.add_argument("--concurrency", type=int, default=8, help="migration concurrency (default 8)")
    bt.add_argument("--json", action="store_true", help="print one line of JSON")
    bi = verb("ingest", "Inbound messages end to end (simulator -> session -> streams -> router -> PostgreSQL) "
              "and the raw insert ceiling, in a scratch database.", cmd_bench_ingest, bench_verbs)  # fmt: skip
    bi.add_argument("--tenants", type=int, default=4, help="tenants, one simulated number each (default 4)")
    bi.add_argument("--messages", type=int, default=50_000, help="inbound messages in all (default 50000)")
    bi.add_argument("--phones", type=int, default=50, help="customer phones per tenant (default 50)")
    bi.add_argument("--shards", type=int, default=4, help="inbound stream shards (default 4)")
    bi.add_argument("--rate", type=float, default=5000.0,
                    help="offered load (msg/s, all tenants) of the latency phase (default 5000)")  # fmt: skip
    bi.add_argument("--json", action="store_true", help="print one line of JSON")
    bx = verb("inbox", "The agent inbox through the HTTP API on 100,000 tickets and ~1,000,000 messages (bulk-loaded "
              "into a scratch database): list, search and open-ticket latency.", cmd_bench_inbox, bench_verbs)  # fmt: skip
    bx.add_argument("--tickets", type=int, default=100_000, help="tickets to load, 5-15 messages each (default 100000)")
    bx.add_argument("--requests", type=int, default=300, help="measured requests per kind (default 300)")
    bx.add_argument("--seed", type=int, default=7, help="random seed of the data and the requests (default 7)")
    bx.add_argument("--json", action="store_true", help="print one line of JSON")
    bs = verb("sessions", "Simulated sessions on Ray hosts: memory per session and recovery after a host is killed.",
              cmd_bench_sessions, bench_verbs)  # fmt: skip
    bs.add_argument("--sessions", type=int, default=1000, help="simulated WhatsApp sessions (default 1000)")
    bs.add_argument("--per-host", type=int, default=250, help="sessions per session host (default 250)")
    bs.add_argument("--tenants", type=int, default=10, help="tenants the sessions belong to (default 10)")
    bs.add_argument("--json", action="store_true", help="print one line of JSON")
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops every verb as cleanly as Ctrl-C
    try:
        overrides = {k: v for k, v in (("host", getattr(args, "host", None)), ("port", getattr(args, "port", None)))
                     if v is not None}  # fmt: skip
        environ = dict(os.environ)
        if args.verb == "bench":  # a benchmark prints its JSON; progress chatter would drown it
            environ.setdefault("ATENDE_LOG_LEVEL", "WARNING")
        if args.verb == "dev":  # dev defaults, unless the environment says otherwise
            environ.setdefault("ATENDE_ENV", "dev")
            environ.setdefault("ATENDE_LOG_FORMAT", "console")
        settings = Settings.from_env(environ, **overrides)
        configure_logging(settings.log_level, settings.log_format)
        if getattr(args, "simulator_handler", None) is not None:
            code: int = args.simulator_handler(args, settings.simulator_url)
        else:
            code = args.handler(args, settings)
    except SettingsError as exc:
        print(f"atende: configuration error: {exc}", file=sys.stderr)
        return 2
    except AtendeError as exc:
        print(f"atende: error [{exc.code}]: {exc.detail}", file=sys.stderr)
        return 2 if isinstance(exc, InvalidInput) or exc.status < 500 else 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
