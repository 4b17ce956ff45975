"""Password hashing with argon2id (OWASP parameters: 19 MiB, 2 iterations, 1 lane)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from tenants.errors import InvalidInput

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "WeakPassword",
    "check_password",
    "common_passwords",
    "hash_password",
    "verify_password",
    "verify_stored",
]

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)


class WeakPassword(InvalidInput):
    code = "weak_password"
    title = "Password does not meet the policy"


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (``common_passwords.txt``), lower-cased."""
    text = resources.files("tenants").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_password(password: str) -> str:
    """Return ``password`` if it meets the policy (length, not a common password), else raise ``WeakPassword``."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"password must be {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters long")
    if password.strip().lower() in common_passwords():
        raise WeakPassword("this password is among the most common ones; choose another")
    return password


def hash_password(password: str) -> str:
    """argon2id hash of a password that passed :func:`check_password`."""
    return _HASHER.hash(check_password(password))


@cache
def _decoy_hash() -> str:
    return _HASHER.hash("not a real password, only for timing")


def verify_stored(password_hash: str | None, password: str) -> bool:
    """Like :func:`verify_password`, but a missing account (``None``) costs the same time, and is never valid:
    login timing does not reveal which e-mails exist."""
    ok = verify_password(password_hash if password_hash is not None else _decoy_hash(), password)
    return ok and password_hash is not None


def verify_password(password_hash: str, password: str) -> bool:
    """True if ``password`` matches; never raises on a malformed hash."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
