"""The `atende` verbs as a user types them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable

import pytest

from saas.cli import build_parser
from saas.settings import ENV_VARS


def atende(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "saas.cli", *args],
        env={**os.environ, "ATENDE_LOG_LEVEL": "WARNING", **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "verb",
    [[], ["serve"], ["dev"], ["migrate"], ["tenants"], ["tenants", "create"], ["tenants", "list"],
     ["tenants", "suspend"], ["tenants", "resume"], ["bench"], ["bench", "tenants"], ["worker"], ["supervisor"],
     ["simulator"], ["sim", "send"], ["sim", "inbox"], ["operators"], ["operators", "create"],
     ["operators", "disable"], ["operators", "enable"]],
)  # fmt: skip
def test_every_verb_has_help(verb: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*verb, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: atende" in out
    assert all(v.name in out for v in ENV_VARS)


def test_missing_database_url_names_the_variable() -> None:
    result = atende("migrate", env={"DATABASE_URL": ""})
    assert result.returncode == 2
    assert "DATABASE_URL must be set" in result.stderr


def test_bad_variable_names_it() -> None:
    result = atende("tenants", "list", env={"ATENDE_PORT": "http"})
    assert result.returncode == 2
    assert "ATENDE_PORT" in result.stderr


async def test_tenants_create_list_suspend_resume(create_database: Callable[[], Awaitable[str]]) -> None:
    url = await create_database()
    env = {"DATABASE_URL": url}
    assert atende("migrate", env=env).returncode == 0

    created = atende("tenants", "create", "padaria", "--name", "Padaria Central", "--admin-email", "Dono@Padaria.com.br",
                     "--admin-password", "-", "--plan", "pro", env=env, stdin="pão de queijo 123\n")  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "created tenant padaria" in created.stdout

    duplicate = atende("tenants", "create", "padaria", "--name", "X", "--admin-email", "a@b.io",
                       "--admin-password", "correct horse", env=env)  # fmt: skip
    assert duplicate.returncode == 2
    assert "[tenant_exists]" in duplicate.stderr

    bad = atende("tenants", "create", "pg_evil", "--name", "X", "--admin-email", "a@b.io",
                 "--admin-password", "correct horse", env=env)  # fmt: skip
    assert bad.returncode == 2
    assert "[invalid_slug]" in bad.stderr

    listed = atende("tenants", "list", "--json", env=env)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["slug"], r["plan"], r["status"], r["schema"]) for r in rows] == [
        ("padaria", "pro", "active", "t_padaria")
    ]

    assert atende("tenants", "suspend", "padaria", env=env).returncode == 0
    table = atende("tenants", "list", env=env).stdout
    assert "padaria" in table and "suspended" in table
    assert atende("tenants", "resume", "padaria", env=env).returncode == 0
    missing = atende("tenants", "suspend", "nobody", env=env)
    assert missing.returncode == 2
    assert "[tenant_not_found]" in missing.stderr


async def test_operators_create_disable_enable(create_database: Callable[[], Awaitable[str]]) -> None:
    env = {"DATABASE_URL": await create_database()}
    assert atende("migrate", env=env).returncode == 0
    created = atende("operators", "create", "Ops@Atende.example", "--name", "Ops", "--password", "-", env=env,
                     stdin="operator battery staple\n")  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "created platform operator" in created.stdout
    again = atende("operators", "create", "ops@atende.example", "--name", "Ops", "--password", "another long one",
                   env=env)  # fmt: skip
    assert (again.returncode, "[operator_exists]" in again.stderr) == (2, True)
    assert atende("operators", "disable", "ops@atende.example", env=env).returncode == 0
    assert atende("operators", "enable", "OPS@atende.example", env=env).returncode == 0
    missing = atende("operators", "disable", "nobody@atende.example", env=env)
    assert (missing.returncode, "[operator_not_found]" in missing.stderr) == (2, True)
