"""The search documents are built by one expression in two places (the migration's stored/indexed columns and the
queries in :mod:`saas.search`); they must stay identical or the indexes silently stop matching."""

from __future__ import annotations

from saas import search
from tenants.migrations.tenant import m0007_ticketing


def test_the_migration_and_the_queries_fold_text_identically() -> None:
    assert m0007_ticketing._FOLD.format(col="x") == search._fold_sql("x")


def test_the_fold_table_covers_capitals_and_matches_the_python_fold() -> None:
    assert len(search._ACCENTED) == len(search._PLAIN)
    folded = search._ACCENTED.translate(str.maketrans(search._ACCENTED, search._PLAIN))
    assert folded == search.fold(search._ACCENTED)
    assert search.fold("ÁRVORE São João ÇÉU") == "arvore sao joao ceu"
