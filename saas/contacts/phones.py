"""Phone numbers and WhatsApp identities: normalizing what people type, and deciding who a chat is.

Pure functions, no I/O. Decisions, stated once so every function agrees:

* **E.164 out.** ``normalize_phone`` returns ``+<digits>`` with 8..15 digits, or raises ``ValueError``. A number
  is international when it starts with ``+`` or ``00``, or is a jid (``@s.whatsapp.net`` / ``@c.us``, whose digits
  always include the country code). Separators (spaces, ``-``, ``.``, ``(``, ``)``) are ignored; anything else,
  letters included, is rejected.
* **Brazilian national formats** are only guessed when the default country is ``55``: 10 digits are DDD + an
  8-digit number (subscriber starting 2-9), 11 digits are DDD + a 9-digit mobile (starting 9); a leading trunk
  ``0`` is dropped first. A DDD is two digits 1-9 (``10``, ``20`` ... are not area codes). Digits that fit none of
  that are taken as international when there are 11-15 of them (``14155550100`` is the US number, not DDD 14),
  else rejected. Other countries' national formats are never guessed.
* **Brazil's 9th digit.** WhatsApp still reports mobiles registered before 2012-2016 as 12 digits (``55`` + DDD +
  8 digits starting 6-9), while people write them with the extra ``9``. ``phone_key`` maps both spellings to the
  13-digit form so one person is one key; 12-digit landlines (subscriber starting 2-5) are left alone.
* **Identities.** The chat id is what we write to, always. A phone chat's ``phone`` is exactly the digits WhatsApp
  reported (the key carries the canonical form). The alternate id of a message the business sent itself belongs to
  the business, so it is ignored. ``identity_of`` trusts WhatsApp on a phone jid's length (1..15 digits): refusing
  a real chat would drop its messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "Identity",
    "IdentityKind",
    "br_variants",
    "identity_of",
    "normalize_phone",
    "phone_key",
    "same_person",
]

IdentityKind = Literal["person", "group"]

_KINDS: frozenset[str] = frozenset(get_args(IdentityKind))
_DIGITS = re.compile(r"[0-9]+")
_SEPARATORS = re.compile(r"[\s\-.()]")
_MIN_DIGITS = 8
_MAX_DIGITS = 15

_PHONE_SUFFIX = "@s.whatsapp.net"
_LEGACY_PHONE_SUFFIX = "@c.us"
_LID_SUFFIX = "@lid"
_GROUP_SUFFIXES = ("@g.us", "@broadcast", "@newsletter")


def _is_digits(text: str) -> bool:
    return _DIGITS.fullmatch(text) is not None


def _valid_ddd(ddd: str) -> bool:
    return len(ddd) == 2 and ddd[0] in "123456789" and ddd[1] in "123456789"


def _br_national(digits: str) -> str | None:
    """``55`` + digits when ``digits`` is DDD + subscriber in a shape Brazil uses, else None."""
    if not _valid_ddd(digits[:2]):
        return None
    subscriber = digits[2:]
    if len(subscriber) == 9 and subscriber[0] == "9":
        return "55" + digits
    if len(subscriber) == 8 and subscriber[0] in "23456789":
        return "55" + digits
    return None


def _e164(digits: str, raw: str) -> str:
    if len(digits) < _MIN_DIGITS:
        raise ValueError(f"phone number {raw!r} is too short: {len(digits)} digits, at least {_MIN_DIGITS} needed")
    if len(digits) > _MAX_DIGITS:
        raise ValueError(f"phone number {raw!r} is too long: {len(digits)} digits, at most {_MAX_DIGITS} allowed")
    if digits[0] == "0":
        raise ValueError(f"phone number {raw!r} has no country code: country codes never start with 0")
    return "+" + digits


def normalize_phone(raw: str, default_country: str = "55") -> str:
    """``raw`` as E.164 ``+<digits>``; national numbers are read as Brazilian only when ``default_country`` is 55."""
    if not _is_digits(default_country) or not 1 <= len(default_country) <= 3:
        raise ValueError(f"default_country must be a 1-3 digit country calling code, got {default_country!r}")
    text = raw.strip()
    if not text:
        raise ValueError("phone number is empty")
    for suffix in (_PHONE_SUFFIX, _LEGACY_PHONE_SUFFIX):
        if text.endswith(suffix):
            user = text.removesuffix(suffix)
            if not _is_digits(user):
                raise ValueError(f"phone jid {raw!r} must be digits before {suffix}")
            return _e164(user, raw)
    international = text.startswith("+")
    body = _SEPARATORS.sub("", text.removeprefix("+"))
    if not body:
        raise ValueError(f"phone number {raw!r} has no digits")
    if not _is_digits(body):
        bad = sorted({ch for ch in body if ch not in "0123456789"})
        raise ValueError(f"phone number {raw!r} contains characters that are not digits: {''.join(bad)!r}")
    if international:
        return _e164(body, raw)
    if body.startswith("00"):
        return _e164(body[2:], raw)
    if default_country == "55":
        national = _br_national(body[1:] if body.startswith("0") else body)
        if national is not None:
            return _e164(national, raw)
        if body.startswith("0"):
            raise ValueError(f"phone number {raw!r} is not a Brazilian number with trunk prefix 0 + DDD + number")
    elif body.startswith("0"):
        raise ValueError(
            f"phone number {raw!r} looks national; write it with + and the country code "
            f"(national formats are only read for Brazil)"
        )
    if 11 <= len(body) <= _MAX_DIGITS:
        return _e164(body, raw)
    raise ValueError(f"phone number {raw!r} is neither a national number nor international; add + and the country code")


def _key_digits(phone: str) -> str:
    text = phone.strip()
    digits = text.removesuffix(_PHONE_SUFFIX) if text.endswith(_PHONE_SUFFIX) else text.removeprefix("+")
    if not _is_digits(digits):
        raise ValueError(f"expected +digits, digits or a {_PHONE_SUFFIX} jid, got {phone!r}")
    return digits


def _is_old_br_mobile(digits: str) -> bool:
    """12 digits: 55 + DDD + an 8-digit mobile that predates the 9th digit."""
    return len(digits) == 12 and digits.startswith("55") and _valid_ddd(digits[2:4]) and digits[4] in "6789"


def phone_key(phone: str) -> str:
    """Canonical digits of a phone: two numbers are the same person when their keys are equal."""
    digits = _key_digits(phone)
    if _is_old_br_mobile(digits):
        return digits[:4] + "9" + digits[4:]
    return digits


def br_variants(phone: str) -> tuple[str, ...]:
    """The digit forms WhatsApp may know a Brazilian mobile under (13-digit first, then 12); else just the key."""
    key = phone_key(phone)
    short = key[:4] + key[5:]
    if len(key) == 13 and key[4] == "9" and _is_old_br_mobile(short):
        return (key, short)
    return (key,)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a chat is: the chat id to write to, plus whatever WhatsApp told us of the phone and the LID."""

    kind: IdentityKind
    wa_id: str  # the chat the message came from; replies go here
    phone: str | None  # "+digits" exactly as WhatsApp reported it (no 9th digit added)
    phone_key: str | None
    lid: str | None  # "<id>@lid"

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown identity kind {self.kind!r}")


def _split_jid(jid: str, what: str) -> tuple[str, str]:
    user, at, server = jid.rpartition("@")
    if not at or not user or not server or any(ch.isspace() for ch in jid):
        raise ValueError(f"{what} {jid!r} is not a WhatsApp id (<id>@<server>)")
    return user, "@" + server


def _phone_user(user: str, jid: str) -> str:
    if not _is_digits(user) or len(user) > _MAX_DIGITS:
        raise ValueError(f"phone jid {jid!r} must be 1-{_MAX_DIGITS} digits before {_PHONE_SUFFIX}")
    return user


def identity_of(chat_id: str, sender_alt_id: str | None, *, from_me: bool) -> Identity:
    """Who the chat ``chat_id`` is; ``sender_alt_id`` is the sender's other id (a LID for a phone, or the reverse)."""
    user, server = _split_jid(chat_id, "chat id")
    if server in _GROUP_SUFFIXES:
        return Identity(kind="group", wa_id=chat_id, phone=None, phone_key=None, lid=None)
    # On the business's own messages the alternate id is the business's, not the contact's.
    alt = None if sender_alt_id is None or from_me else (sender_alt_id, *_split_jid(sender_alt_id, "sender alt id"))
    if server == _PHONE_SUFFIX:
        digits = _phone_user(user, chat_id)
        lid = alt[0] if alt is not None and alt[2] == _LID_SUFFIX else None
        return Identity(kind="person", wa_id=chat_id, phone="+" + digits, phone_key=phone_key(digits), lid=lid)
    if server == _LID_SUFFIX:
        if alt is not None and alt[2] == _PHONE_SUFFIX:
            digits = _phone_user(alt[1], alt[0])
            return Identity(kind="person", wa_id=chat_id, phone="+" + digits, phone_key=phone_key(digits), lid=chat_id)
        return Identity(kind="person", wa_id=chat_id, phone=None, phone_key=None, lid=chat_id)
    raise ValueError(f"chat id {chat_id!r} has an unknown server {server!r}")


def same_person(a: Identity, b: Identity) -> bool:
    """Whether two identities are one contact: a shared phone key or LID (groups: the same chat)."""
    if a.kind == "group" or b.kind == "group":
        return a.kind == b.kind and a.wa_id == b.wa_id
    if a.phone_key is not None and a.phone_key == b.phone_key:
        return True
    return a.lid is not None and a.lid == b.lid
