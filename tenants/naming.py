"""Tenant slug and schema-name rules (pure functions, no I/O).

A tenant's schema is ``t_<slug>``. Slugs are validated here and schema names are validated again at
the schema switch, so no string from outside ever reaches SQL as an identifier unchecked.
"""

from __future__ import annotations

import re

from tenants.errors import InvalidSlug

__all__ = [
    "MAX_SLUG_LENGTH",
    "SCHEMA_PREFIX",
    "is_tenant_schema",
    "quote_ident",
    "schema_for",
    "validate_slug",
]

SCHEMA_PREFIX = "t_"
MAX_SLUG_LENGTH = 40
_SLUG_RE = re.compile(r"[a-z][a-z0-9_]*\Z", re.ASCII)
_SCHEMA_RE = re.compile(rf"{SCHEMA_PREFIX}[a-z][a-z0-9_]{{1,{MAX_SLUG_LENGTH - 1}}}\Z", re.ASCII)
# Names that would confuse operators, URLs or PostgreSQL even behind the prefix.
_RESERVED = frozenset(
    {
        "public", "information_schema", "admin", "api", "app", "hooks", "metrics", "platform", "static",
        "system", "root", "postgres", "template0", "template1", "www", "healthz", "readyz",
    }
)  # fmt: skip


def validate_slug(slug: str) -> str:
    """Return ``slug`` if it is a valid tenant slug, else raise ``InvalidSlug`` saying why."""
    value: object = slug  # callers may pass anything that came off the wire
    if not isinstance(value, str) or not value:
        raise InvalidSlug("slug must be a non-empty string")
    if len(slug) < 2 or len(slug) > MAX_SLUG_LENGTH:
        raise InvalidSlug(f"slug must be 2-{MAX_SLUG_LENGTH} characters long, got {len(slug)}")
    if not _SLUG_RE.match(slug):
        raise InvalidSlug("slug must start with a lowercase ASCII letter and contain only a-z, 0-9 and underscores")
    if slug.startswith("pg_") or slug in _RESERVED:
        raise InvalidSlug(f"slug {slug!r} is reserved")
    if slug.endswith("_") or "__" in slug:
        raise InvalidSlug("slug must not end with an underscore or contain two in a row")
    return slug


def schema_for(slug: str) -> str:
    """The PostgreSQL schema that holds tenant ``slug``'s tables."""
    return SCHEMA_PREFIX + validate_slug(slug)


def is_tenant_schema(name: str) -> bool:
    """True if ``name`` is a well-formed tenant schema name (safe to use as an identifier)."""
    value: object = name
    return isinstance(value, str) and bool(_SCHEMA_RE.match(value))


def quote_ident(name: str) -> str:
    """Double-quote an identifier that was validated by this module."""
    if not is_tenant_schema(name) and name != "public":
        raise InvalidSlug(f"refusing to quote unvalidated identifier {name!r}")
    return f'"{name}"'
