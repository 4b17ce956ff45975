from __future__ import annotations

from pathlib import Path

import pytest

from saas.settings import ENV_VARS, Settings, SettingsError


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.env == "prod"
    assert settings.database_url is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.demo_number == "+5511900000000"
    assert settings.simulator_url == "http://127.0.0.1:8010"
    assert settings.data_dir == Path(".atende")


def test_values_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u@db/atende",
            "REDIS_URL": "redis://cache:6379/1",
            "ATENDE_PORT": "9000",
            "ATENDE_LOG_LEVEL": "debug",
            "ATENDE_CORS_ORIGINS": "https://a.example, https://b.example,",
            "ATENDE_DEMO_NUMBER": "5511988887777",
            "ATENDE_DATA_DIR": "/var/lib/atende",
            "SENTRY_DSN": "",  # empty means unset
        }
    )
    assert settings.port == 9000
    assert settings.log_level == "DEBUG"
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.demo_number == "+5511988887777"
    assert settings.data_dir == Path("/var/lib/atende")
    assert settings.sentry_dsn is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ATENDE_PORT", "eighty"),
        ("ATENDE_PORT", "70000"),
        ("DATABASE_URL", "mysql://x/y"),
        ("REDIS_URL", "http://localhost"),
        ("ATENDE_ENV", "staging"),
        ("ATENDE_LOG_FORMAT", "xml"),
        ("ATENDE_DEMO_NUMBER", "call me"),
        ("ATENDE_DB_POOL_SIZE", "0"),
        ("SENTRY_DSN", "not a url"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_required_values_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL, REDIS_URL"):
        Settings.from_env({}).require("database_url", "redis_url")
    Settings.from_env({"DATABASE_URL": "postgresql://x/y"}).require("database_url")


def test_overrides_win() -> None:
    assert Settings.from_env({"ATENDE_PORT": "9000"}, port=9100).port == 9100


def test_every_variable_maps_to_a_field_and_is_in_the_readme() -> None:
    fields = set(Settings.__struct_fields__)
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for var in ENV_VARS:
        assert var.field in fields
        assert f"`{var.name}`" in readme, f"{var.name} is missing from the README's table"
