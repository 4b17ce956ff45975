"""The customer's satisfaction rating after a ticket closes: reading a 1-5 answer out of a WhatsApp message.

The caller only asks ``parse_rating`` while a closed ticket awaits its rating; a message that is not a rating
(``None``) is then treated as a new conversation, so a false positive swallows a real request. Decisions:

* **One token.** A rating is exactly one token ``1``..``5`` (a digit, or ``um``/``uma``, ``dois``/``duas``,
  ``três``, ``quatro``, ``cinco``) and the message holds no other digit nor another number word. Scales other than
  5 (``5/10``, ``8 de 10``) are refused rather than converted.
* **Where.** The token opens the message (``5``, ``5 - ótimo``, ``4/5``, ``3 de 5``) or follows the word ``nota``
  (``Nota: 4``, ``minha nota é 5``). A digit may be followed by any comment without digits (``5, muito bom``); a word
  only by punctuation or ``estrela(s)``, because ``um`` and ``uma`` are also articles (``um ótimo atendimento``).
* **Stars.** A message of only stars counts the filled ones: ``⭐``, ``★`` and ``🌟`` are filled, ``☆`` empty, at most
  five in all (``★★★☆☆`` is 3).
* **Forms.** Case, accents, surrounding whitespace and keycap marks (``5️⃣``) are ignored; a message longer than 80
  characters (after stripping) is a conversation, not a rating.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["RATING_MAX", "RATING_MIN", "parse_rating"]

RATING_MIN = 1
RATING_MAX = 5

_MAX_LENGTH = 80
_WORDS = {"um": 1, "uma": 1, "dois": 2, "duas": 2, "tres": 3, "quatro": 4, "cinco": 5}
_FILLED_STARS = frozenset("⭐★🌟")
_STARS = _FILLED_STARS | {"☆"}
_TOKEN = r"(?P<token>[0-9]+|" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")"
_SCALE = r"(?:\s*/\s*|\s+de\s+)(?P<scale>[0-9]+)"
_AT_START = re.compile(rf"{_TOKEN}(?:{_SCALE})?(?P<rest>.*)", re.DOTALL)
_AFTER_NOTA = re.compile(rf"\bnota\s*(?:e\s+)?[:=\-]?\s*{_TOKEN}(?:{_SCALE})?(?P<rest>.*)", re.DOTALL)
# Number words other than the articles "um"/"uma": a second rating ("3 ou quatro") or another scale ("nota dez").
_OTHER_NUMBER = re.compile(r"\d|\b(?:zero|dois|duas|tres|quatro|cinco|seis|sete|oito|nove|dez)\b")
_WORD_TAIL = re.compile(r"[\W_]*(?:estrelas?)?[\W_]*")


def _fold(text: str) -> str:
    """Lower case, no accents or keycap marks, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.replace("\N{KEYCAP TEN}", "10"))
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) not in ("Mn", "Me"))
    return " ".join(bare.casefold().split())


def _stars(folded: str) -> int | None:
    stars = folded.replace(" ", "")
    if not stars or not set(stars) <= _STARS or len(stars) > RATING_MAX:
        return None
    filled = sum(ch in _FILLED_STARS for ch in stars)
    return filled if filled >= RATING_MIN else None


def parse_rating(text: str | None) -> int | None:
    """The rating 1..5 that ``text`` gives, or None when the message is not a rating."""
    if text is None:
        return None
    stripped = text.strip()
    if not stripped or len(stripped) > _MAX_LENGTH:
        return None
    folded = _fold(stripped)
    if (stars := _stars(folded)) is not None:
        return stars
    for match in (_AT_START.fullmatch(folded), _AFTER_NOTA.search(folded)):
        if match is not None and (rating := _rating(match, folded[: match.start()])) is not None:
            return rating
    return None


def _rating(match: re.Match[str], before: str) -> int | None:
    token, scale, rest = match["token"], match["scale"], match["rest"]
    if scale is not None and scale != str(RATING_MAX):
        return None
    if _OTHER_NUMBER.search(before) or _OTHER_NUMBER.search(rest):
        return None
    if token in _WORDS:
        return _WORDS[token] if _WORD_TAIL.fullmatch(rest) is not None else None
    rating = int(token) if len(token) == 1 else 0
    return rating if RATING_MIN <= rating <= RATING_MAX else None
