from __future__ import annotations

import pytest

from tenants.errors import InvalidSlug
from tenants.naming import MAX_SLUG_LENGTH, is_tenant_schema, quote_ident, schema_for, validate_slug


@pytest.mark.parametrize("slug", ["ab", "acme", "acme_2", "a1", "z" * MAX_SLUG_LENGTH, "loja_da_ana"])
def test_valid_slugs(slug: str) -> None:
    assert validate_slug(slug) == slug
    assert schema_for(slug) == f"t_{slug}"
    assert is_tenant_schema(schema_for(slug))


@pytest.mark.parametrize(
    "slug",
    [
        "",
        "a",
        "z" * (MAX_SLUG_LENGTH + 1),
        'acme"; DROP SCHEMA public; --',
        "acme'",
        'ac"me',
        "public",
        "information_schema",
        "pg_catalog",
        "pg_x",
        "Acme",
        "1acme",
        "_acme",
        "acme_",
        "ac__me",
        "ac-me",
        "ac me",
        "açme",
        "acmé",
        "\uff46\uff55\uff4c\uff4c",  # fullwidth letters
        "acme\n",
        "acme\x00",
    ],
)
def test_rejected_slugs(slug: str) -> None:
    with pytest.raises(InvalidSlug) as info:
        validate_slug(slug)
    assert info.value.code == "invalid_slug"


def test_non_string_slug_is_rejected() -> None:
    with pytest.raises(InvalidSlug):
        validate_slug(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["t_acme", "t_a1", "t_" + "z" * MAX_SLUG_LENGTH])
def test_schema_names(name: str) -> None:
    assert is_tenant_schema(name)
    assert quote_ident(name) == f'"{name}"'


@pytest.mark.parametrize(
    "name",
    ["acme", "t_", "t_A", 't_a"b', "t_" + "z" * (MAX_SLUG_LENGTH + 1), "pg_catalog", "t_acme;", "T_acme"],
)
def test_bad_schema_names_are_never_quoted(name: str) -> None:
    assert not is_tenant_schema(name)
    with pytest.raises(InvalidSlug):
        quote_ident(name)


def test_public_may_be_quoted() -> None:
    assert quote_ident("public") == '"public"'
