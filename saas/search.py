"""Text search over message bodies and contact names, with PostgreSQL's built-in full-text search.

The documents are ``to_tsvector('simple', <folded text>)`` where folding lower-cases and removes accents with
``translate`` (the same expression as the GIN indexes of migration m0007: ``unaccent`` is an extension the
embedded PostgreSQL does not ship). Queries match every word as a prefix (``pedi`` finds "pedido"), all words
required. Words are reduced to letters and digits here, so no user text ever reaches ``to_tsquery`` syntax.
"""

from __future__ import annotations

import bisect
import re
import time
import unicodedata
from collections.abc import Callable
from typing import Any

import asyncpg

__all__ = ["body_document", "contact_clause", "contact_document", "digits_of", "fold", "tsquery", "word_frequency"]

# Capitals too: ``lower`` leaves accented capitals alone under the "C" collation.
_ACCENTED = "áàâãäåéèêëíìîïóòôõöúùûüçñýÁÀÂÃÄÅÉÈÊËÍÌÎÏÓÒÔÕÖÚÙÛÜÇÑÝ"
_PLAIN = "aaaaaaeeeeiiiiooooouuuucnyaaaaaaeeeeiiiiooooouuuucny"


def _fold_sql(column: str) -> str:
    return f"translate(lower(coalesce({column}, '')), '{_ACCENTED}', '{_PLAIN}')"


def body_document(alias: str = "m") -> str:
    """The text-search document of ``messages.body`` (stored in ``messages.search``, GIN-indexed)."""
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


_LETTERS = re.compile(r"[a-z]+")


def contact_clause(text: str, arg: Callable[[Any], str], alias: str = "c") -> str:
    """SQL matching a contact to what someone typed: every word (letters) a prefix of a word of the names, and the
    digits, when there are at least three, inside the phone — as WhatsApp reports it or in its canonical form
    (Brazil's 9th digit), so "(21) 98765-4321" finds +552187654321. ``arg`` adds a parameter, returns ``$n``."""
    clauses = []
    words = _LETTERS.findall(fold(text))[:8]
    if words:
        query = " & ".join(f"{w}:*" for w in words)
        clauses.append(f"{contact_document(alias)} @@ to_tsquery('simple', {arg(query)})")
    digits = digits_of(text)
    if len(digits) >= 3:
        pattern = arg("%" + digits + "%")
        clauses.append(f"({alias}.phone LIKE {pattern} OR {alias}.phone_key LIKE {pattern})")
    return "(" + " AND ".join(clauses) + ")" if clauses else "false"


# -- how common a word is: PostgreSQL's own statistics, read directly ---------------------------------------------------

_STATS_TTL_S = 600.0
_NO_STATS_TTL_S = 60.0  # before the first ANALYZE: look again soon, but not on every search
_Stats = tuple[list[str], list[float], float]
_stats: dict[str, tuple[float, _Stats | None]] = {}


async def _lexeme_stats(conn: asyncpg.Connection, schema: str) -> _Stats | None:
    """The most common lexemes of ``messages.search`` with the fraction of messages containing each, sorted by
    lexeme, and the smallest fraction listed (every unlisted lexeme is rarer). None before the first ANALYZE."""
    cached = _stats.get(schema)
    if cached is not None and time.monotonic() - cached[0] < (_STATS_TTL_S if cached[1] else _NO_STATS_TTL_S):
        return cached[1]
    row = await conn.fetchrow(
        "SELECT most_common_elems::text::text[] AS elems, most_common_elem_freqs AS freqs FROM pg_stats"
        " WHERE schemaname = $1 AND tablename = 'messages' AND attname = 'search'",
        schema,
    )
    result: _Stats | None = None
    if row is not None and row["elems"] is not None and row["freqs"]:
        elems, freqs = list(row["elems"]), list(row["freqs"])[: len(row["elems"])]
        floor = float(row["freqs"][len(elems)])  # after the per-element frequencies: their minimum, maximum, nulls
        pairs = sorted(zip(elems, freqs, strict=True))
        result = ([e for e, _ in pairs], [f for _, f in pairs], floor)
    _stats[schema] = (time.monotonic(), result)
    return result


async def word_frequency(conn: asyncpg.Connection, schema: str, text: str) -> float | None:
    """An estimate of the fraction of messages matching every word of ``text`` as prefixes: the frequency of its
    rarest word (the words of one phrase come together, so the planner's product of frequencies underestimates).
    A word the statistics do not list is rarer than every listed one: 0.0, "collect its matches". None when there
    are no statistics yet."""
    stats = await _lexeme_stats(conn, schema)
    if stats is None:
        return None
    elems, freqs = stats[0], stats[1]
    rarest = 1.0
    for word in _WORD.findall(fold(text))[:8]:
        start = bisect.bisect_left(elems, word)
        total = 0.0
        for i in range(start, len(elems)):
            if not elems[i].startswith(word):
                break
            total += freqs[i]
        rarest = min(rarest, total)
    return rarest
