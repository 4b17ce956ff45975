"""Text search over message bodies and contact names, with PostgreSQL's built-in full-text search.

The documents are ``to_tsvector('simple', <folded text>)`` where folding lower-cases and removes accents with
``translate`` (the same expression as the GIN indexes of migration m0007: ``unaccent`` is an extension the
embedded PostgreSQL does not ship). Queries match every word as a prefix (``pedi`` finds "pedido"), all words
required. Words are reduced to letters and digits here, so no user text ever reaches ``to_tsquery`` syntax.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["body_document", "contact_document", "digits_of", "fold", "tsquery"]

_ACCENTED = "áàâãäåéèêëíìîïóòôõöúùûüçñý"
_PLAIN = "aaaaaaeeeeiiiiooooouuuucny"


def _fold_sql(column: str) -> str:
    return f"translate(lower(coalesce({column}, '')), '{_ACCENTED}', '{_PLAIN}')"


def body_document(alias: str = "m") -> str:
    """The indexed document of ``messages.body`` (exactly the index expression, over ``alias``)."""
    return f"to_tsvector('simple'::regconfig, {_fold_sql(f'{alias}.body')})"


def contact_document(alias: str = "c") -> str:
    """The indexed document of a contact's names."""
    return f"to_tsvector('simple'::regconfig, {_fold_sql(f'{alias}.name')} || ' ' || {_fold_sql(f'{alias}.push_name')})"


def fold(text: str) -> str:
    """Lower case without accents, like the SQL documents (and a little beyond: any combining mark goes)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_WORD = re.compile(r"[a-z0-9]+")


def tsquery(text: str, *, max_words: int = 8) -> str | None:
    """``word1:* & word2:*`` for the words of ``text`` (None when it has none)."""
    words = _WORD.findall(fold(text))[:max_words]
    return " & ".join(f"{w}:*" for w in words) if words else None


def digits_of(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())
