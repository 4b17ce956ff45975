from __future__ import annotations

import stat
from pathlib import Path

from saas.dev import _demo_password, _secret_key
from saas.settings import Settings


def test_generated_demo_password_and_key_are_kept_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    password = _demo_password(settings)
    key = _secret_key(settings)
    assert len(password) >= 12 and len(key) >= 32
    assert _demo_password(settings) == password and _secret_key(settings) == key  # a second run reuses them
    for name in ("demo-password", "secret-key"):
        assert stat.S_IMODE((tmp_path / "data" / name).stat().st_mode) == 0o600


def test_configured_values_win(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, demo_password="from env 123", secret_key="k" * 40)
    assert _demo_password(settings) == "from env 123"
    assert _secret_key(settings) == "k" * 40
    assert not (tmp_path / "demo-password").exists()
