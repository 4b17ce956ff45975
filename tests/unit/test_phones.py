"""Phone numbers and WhatsApp identities: every accepted format, Brazil's 9th digit both ways, every chat kind."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saas.contacts.phones import (
    Identity,
    br_variants,
    identity_of,
    normalize_phone,
    phone_key,
    same_person,
)

# --- normalize_phone ------------------------------------------------------------------------------------------

ACCEPTED: list[tuple[str, str, str]] = [
    # (raw, default_country, expected)
    ("+55 (11) 98888-7777", "55", "+5511988887777"),
    ("+5511988887777", "55", "+5511988887777"),
    ("5511988887777", "55", "+5511988887777"),
    ("551188887777", "55", "+551188887777"),  # 12-digit old mobile: kept as written
    ("0055 11 98888 7777", "55", "+5511988887777"),
    ("00 55 11 98888-7777", "55", "+5511988887777"),
    ("+1 415 555 0100", "55", "+14155550100"),
    ("+1 (415) 555.0100", "55", "+14155550100"),
    ("+44 20 7946 0958", "55", "+442079460958"),
    ("  +55 11 98888 7777  ", "55", "+5511988887777"),
    ("+55\t11\u00a098888 7777", "55", "+5511988887777"),  # tabs and no-break spaces are separators
    # Brazilian national numbers
    ("(11) 98888-7777", "55", "+5511988887777"),
    ("11988887777", "55", "+5511988887777"),
    ("11 98888 7777", "55", "+5511988887777"),
    ("1188887777", "55", "+551188887777"),
    ("(11) 3333-4444", "55", "+551133334444"),  # landline
    ("(21) 2222-3333", "55", "+552122223333"),
    ("(99) 99999-0000", "55", "+5599999990000"),
    ("(55) 98888-7777", "55", "+5555988887777"),  # DDD 55 (RS) is not the country code
    # trunk prefix
    ("011 98888-7777", "55", "+5511988887777"),
    ("0 11 98888 7777", "55", "+5511988887777"),
    ("011 3333-4444", "55", "+551133334444"),
    ("01188887777", "55", "+551188887777"),
    # jids
    ("5511988887777@s.whatsapp.net", "55", "+5511988887777"),
    ("5511988887777@c.us", "55", "+5511988887777"),
    ("14155550100@s.whatsapp.net", "55", "+14155550100"),
    ("14155550100@c.us", "1", "+14155550100"),
    # not a Brazilian national shape: read as international
    ("14155550100", "55", "+14155550100"),  # 11 digits, "DDD 14" + 155550100 is no Brazilian number
    ("447911123456", "55", "+447911123456"),
    ("123456789012345", "55", "+123456789012345"),
    # 11 digits that are no Brazilian national number (10 is no DDD; a 9-digit number must start with 9) are
    # international, like any other 11 digits without a prefix
    ("(10) 98888-7777", "55", "+10988887777"),
    ("(11) 88888-7777", "55", "+11888887777"),
    # other default countries: international when 11-15 digits
    ("14155550100", "1", "+14155550100"),
    ("5511988887777", "1", "+5511988887777"),
    ("447911123456", "44", "+447911123456"),
    ("+44 7911 123456", "44", "+447911123456"),
    ("0044 7911 123456", "44", "+447911123456"),
    ("+683 12345", "55", "+68312345"),  # 8 digits is the floor
]


@pytest.mark.parametrize(("raw", "country", "expected"), ACCEPTED)
def test_normalize_phone_accepts(raw: str, country: str, expected: str) -> None:
    assert normalize_phone(raw, country) == expected


REJECTED: list[tuple[str, str, str]] = [
    # (raw, default_country, part of the message)
    ("", "55", "empty"),
    ("   ", "55", "empty"),
    ("+", "55", "no digits"),
    ("()- .", "55", "no digits"),
    ("abc", "55", "not digits"),
    ("+55 11 9888a-7777", "55", "not digits"),
    ("tel:+5511988887777", "55", "not digits"),
    ("+55 11 98888-7777 ramal 2", "55", "not digits"),
    ("55+11988887777", "55", "not digits"),
    ("+55/11/988887777", "55", "not digits"),
    ("\uff11\uff11\uff19\uff18\uff18\uff18\uff18\uff17\uff17\uff17\uff17", "55", "not digits"),  # full-width digits
    ("+1234567", "55", "too short"),
    ("+1234567890123456", "55", "too long"),
    ("00123", "55", "too short"),
    ("+0 11 98888 7777", "55", "country code"),
    ("0000 11 98888 7777", "55", "country code"),
    ("5511988887777@g.us", "55", "not digits"),
    ("55119888x7777@s.whatsapp.net", "55", "digits before"),
    ("@s.whatsapp.net", "55", "digits before"),
    ("123@lid", "55", "not digits"),
    # Brazilian national shapes that are not Brazilian numbers
    ("1098888777", "55", "neither"),  # 10 digits, DDD 10
    ("(20) 3333-4444", "55", "neither"),
    ("(11) 1333-4444", "55", "neither"),  # subscriber starting 1
    ("98888-7777", "55", "neither"),  # no DDD
    ("012 3", "55", "trunk prefix"),
    ("010 98888 7777", "55", "trunk prefix"),
    ("0 11 98888 77777", "55", "trunk prefix"),
    # no guessing of other countries' national formats
    ("4155550100", "1", "neither"),
    ("020 7946 0958", "44", "national"),
    ("07911 123456", "44", "national"),
    ("1188887777", "1", "neither"),
    # bad default country
    ("+5511988887777", "", "default_country"),
    ("+5511988887777", "+55", "default_country"),
    ("+5511988887777", "5555", "default_country"),
]


@pytest.mark.parametrize(("raw", "country", "message"), REJECTED)
def test_normalize_phone_rejects(raw: str, country: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_phone(raw, country)


# --- phone_key and br_variants --------------------------------------------------------------------------------

KEYS: list[tuple[str, str]] = [
    # 12-digit old mobiles gain the 9th digit, for every mobile first digit and edge DDDs
    ("551186667777", "5511986667777"),
    ("551176667777", "5511976667777"),
    ("551188887777", "5511988887777"),
    ("551198887777", "5511998887777"),
    ("552188887777", "5521988887777"),
    ("559988887777", "5599988887777"),
    ("551988887777", "5519988887777"),
    ("+551188887777", "5511988887777"),
    ("551188887777@s.whatsapp.net", "5511988887777"),
    # already 13 digits: unchanged
    ("5511988887777", "5511988887777"),
    ("+5511988887777", "5511988887777"),
    ("5511988887777@s.whatsapp.net", "5511988887777"),
    ("5599999990000", "5599999990000"),
    # 12-digit landlines: unchanged
    ("551122223333", "551122223333"),
    ("551133334444", "551133334444"),
    ("551144445555", "551144445555"),
    ("551155556666", "551155556666"),
    ("+552122223333", "552122223333"),
    # not a DDD: no 9th digit rule
    ("551088887777", "551088887777"),
    ("552088887777", "552088887777"),
    ("550188887777", "550188887777"),
    ("559088887777", "559088887777"),
    # subscriber starting 0 or 1: neither mobile nor landline, untouched
    ("551108887777", "551108887777"),
    ("551118887777", "551118887777"),
    # non-Brazilian numbers untouched, whatever they look like
    ("14155550100", "14155550100"),
    ("+14155550100", "14155550100"),
    ("561188887777", "561188887777"),  # Chile, 12 digits
    ("541188887777", "541188887777"),  # Argentina
    ("447911123456", "447911123456"),
    ("5511888877", "5511888877"),  # too short to be a Brazilian mobile
    ("55118888777766", "55118888777766"),  # too long
]


@pytest.mark.parametrize(("phone", "key"), KEYS)
def test_phone_key(phone: str, key: str) -> None:
    assert phone_key(phone) == key


@pytest.mark.parametrize("bad", ["", "+", "abc", "+55 11 98888 7777", "5511988887777@c.us", "123@lid", "++55119"])
def test_phone_key_rejects_unnormalized(bad: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        phone_key(bad)


VARIANTS: list[tuple[str, tuple[str, ...]]] = [
    ("5511988887777", ("5511988887777", "551188887777")),
    ("+5511988887777", ("5511988887777", "551188887777")),
    ("551188887777", ("5511988887777", "551188887777")),
    ("551188887777@s.whatsapp.net", ("5511988887777", "551188887777")),
    ("5521966667777", ("5521966667777", "552166667777")),
    ("5599977778888", ("5599977778888", "559977778888")),
    # a 13-digit mobile whose number after the 9 starts 1-5 never had a 12-digit form
    ("5511912345678", ("5511912345678",)),
    ("5511952345678", ("5511952345678",)),
    # landlines, bad DDDs, other countries: one form
    ("551133334444", ("551133334444",)),
    ("5510988887777", ("5510988887777",)),
    ("551088887777", ("551088887777",)),
    ("14155550100", ("14155550100",)),
    ("5611988887777", ("5611988887777",)),
]


@pytest.mark.parametrize(("phone", "variants"), VARIANTS)
def test_br_variants(phone: str, variants: tuple[str, ...]) -> None:
    assert br_variants(phone) == variants


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("+55 11 98888-7777", "551188887777@s.whatsapp.net"),
        ("(11) 8888-7777", "5511988887777@s.whatsapp.net"),
        ("011 98888 7777", "+551188887777"),
        ("21 96666-5555", "552166665555"),
    ],
)
def test_twelve_and_thirteen_digit_forms_are_one_person(a: str, b: str) -> None:
    assert phone_key(normalize_phone(a)) == phone_key(normalize_phone(b))
    assert phone_key(normalize_phone(b)) == phone_key(normalize_phone(a))


def test_landline_is_not_merged_with_a_mobile() -> None:
    assert phone_key("551133334444") != phone_key("5511933334444")


# --- identity_of ----------------------------------------------------------------------------------------------

PHONE = "5511988887777@s.whatsapp.net"
OLD_PHONE = "551188887777@s.whatsapp.net"
LID = "123456789012345@lid"
OTHER_LID = "999999999999999@lid"

IDENTITIES: list[tuple[str, str, str | None, bool, Identity]] = [
    ("phone chat, no alt", PHONE, None, False, Identity("person", PHONE, "+5511988887777", "5511988887777", None)),
    ("phone chat, lid alt", PHONE, LID, False, Identity("person", PHONE, "+5511988887777", "5511988887777", LID)),
    ("phone chat, lid alt from me", PHONE, LID, True, Identity("person", PHONE, "+5511988887777", "5511988887777", None)),
    ("phone chat, phone alt ignored", PHONE, OLD_PHONE, False, Identity("person", PHONE, "+5511988887777", "5511988887777", None)),
    ("phone chat, group alt ignored", PHONE, "1203@g.us", False, Identity("person", PHONE, "+5511988887777", "5511988887777", None)),
    ("phone chat, from me no alt", PHONE, None, True, Identity("person", PHONE, "+5511988887777", "5511988887777", None)),
    ("old 12-digit phone keeps its digits", OLD_PHONE, None, False, Identity("person", OLD_PHONE, "+551188887777", "5511988887777", None)),
    ("non-BR phone", "14155550100@s.whatsapp.net", LID, False, Identity("person", "14155550100@s.whatsapp.net", "+14155550100", "14155550100", LID)),
    ("lid chat, no alt", LID, None, False, Identity("person", LID, None, None, LID)),
    ("lid chat, phone alt", LID, PHONE, False, Identity("person", LID, "+5511988887777", "5511988887777", LID)),
    ("lid chat, old phone alt", LID, OLD_PHONE, False, Identity("person", LID, "+551188887777", "5511988887777", LID)),
    ("lid chat, phone alt from me", LID, PHONE, True, Identity("person", LID, None, None, LID)),
    ("lid chat, lid alt ignored", LID, OTHER_LID, False, Identity("person", LID, None, None, LID)),
    ("lid chat, c.us alt ignored", LID, "5511988887777@c.us", False, Identity("person", LID, None, None, LID)),
    ("lid chat, from me no alt", LID, None, True, Identity("person", LID, None, None, LID)),
    ("group", "120363025246125486@g.us", None, False, Identity("group", "120363025246125486@g.us", None, None, None)),
    ("group with alt", "120363025246125486@g.us", PHONE, False, Identity("group", "120363025246125486@g.us", None, None, None)),
    ("group from me", "120363025246125486@g.us", LID, True, Identity("group", "120363025246125486@g.us", None, None, None)),
    ("status broadcast", "status@broadcast", PHONE, False, Identity("group", "status@broadcast", None, None, None)),
    ("broadcast list", "1234567890@broadcast", None, True, Identity("group", "1234567890@broadcast", None, None, None)),
    ("newsletter", "120363144038483540@newsletter", None, False, Identity("group", "120363144038483540@newsletter", None, None, None)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("chat_id", "alt", "from_me", "expected"), [case[1:] for case in IDENTITIES], ids=[case[0] for case in IDENTITIES]
)
def test_identity_of(chat_id: str, alt: str | None, from_me: bool, expected: Identity) -> None:
    assert identity_of(chat_id, alt, from_me=from_me) == expected


@pytest.mark.parametrize(
    ("chat_id", "alt", "message"),
    [
        ("5511988887777", None, "not a WhatsApp id"),
        ("", None, "not a WhatsApp id"),
        ("@s.whatsapp.net", None, "not a WhatsApp id"),
        ("5511988887777@", None, "not a WhatsApp id"),
        ("55 11@s.whatsapp.net", None, "not a WhatsApp id"),
        ("5511988887777@c.us", None, "unknown server"),
        ("5511988887777@example.com", None, "unknown server"),
        ("55119888x7777@s.whatsapp.net", None, "digits"),
        ("1234567890123456@s.whatsapp.net", None, "digits"),
        (PHONE, "not-a-jid", "sender alt id"),
        (LID, "55x@s.whatsapp.net", "digits"),
    ],
)
def test_identity_of_rejects(chat_id: str, alt: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        identity_of(chat_id, alt, from_me=False)


def test_identity_of_ignores_a_malformed_alt_id_from_me() -> None:
    # The business's own alt id is never read, so it cannot fail the message.
    assert identity_of(PHONE, "garbage", from_me=True).lid is None


def test_identity_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        Identity("bot", PHONE, None, None, None)  # type: ignore[arg-type]


# --- same_person ----------------------------------------------------------------------------------------------

BY_PHONE = identity_of(PHONE, None, from_me=False)
BY_OLD_PHONE = identity_of(OLD_PHONE, None, from_me=False)
BY_LID = identity_of(LID, None, from_me=False)
BY_LID_AND_PHONE = identity_of(LID, PHONE, from_me=False)
BY_PHONE_AND_LID = identity_of(PHONE, LID, from_me=False)
BY_OTHER_LID = identity_of(OTHER_LID, None, from_me=False)
LANDLINE = identity_of("551133334444@s.whatsapp.net", None, from_me=False)
GROUP = identity_of("1203@g.us", None, from_me=False)
OTHER_GROUP = identity_of("1204@g.us", None, from_me=False)
BROADCAST = identity_of("1203@broadcast", None, from_me=False)

SAME: list[tuple[str, Identity, Identity, bool]] = [
    ("same phone", BY_PHONE, BY_PHONE, True),
    ("12 and 13 digit forms", BY_PHONE, BY_OLD_PHONE, True),
    ("phone chat vs lid chat knowing the phone", BY_PHONE, BY_LID_AND_PHONE, True),
    ("lid chat vs phone chat knowing the lid", BY_LID, BY_PHONE_AND_LID, True),
    ("old phone vs lid chat knowing the new phone", BY_OLD_PHONE, BY_LID_AND_PHONE, True),
    ("same lid", BY_LID, BY_LID, True),
    ("lid only vs phone only: unknown link", BY_LID, BY_PHONE, False),
    ("different lids", BY_LID, BY_OTHER_LID, False),
    ("different phones", BY_PHONE, LANDLINE, False),
    ("same group", GROUP, GROUP, True),
    ("different groups", GROUP, OTHER_GROUP, False),
    ("group vs broadcast with one id part", GROUP, BROADCAST, False),
    ("group vs person", GROUP, BY_PHONE, False),
    (
        "person with no phone nor lid",
        Identity("person", "x@lid", None, None, None),
        Identity("person", "y@lid", None, None, None),
        False,
    ),
]


@pytest.mark.parametrize(("a", "b", "expected"), [case[1:] for case in SAME], ids=[case[0] for case in SAME])
def test_same_person_is_symmetric(a: Identity, b: Identity, expected: bool) -> None:
    assert same_person(a, b) is expected
    assert same_person(b, a) is expected


# --- properties -----------------------------------------------------------------------------------------------

ddds = st.builds(lambda a, b: f"{a}{b}", st.integers(1, 9), st.integers(1, 9))
br_mobiles_13 = st.builds(lambda d, n: f"55{d}9{n}", ddds, st.from_regex(r"[0-9]{8}", fullmatch=True))
br_mobiles_12 = st.builds(lambda d, n: f"55{d}{n}", ddds, st.from_regex(r"[6-9][0-9]{7}", fullmatch=True))
any_digits = st.from_regex(r"[0-9]{1,15}", fullmatch=True)
phones = st.one_of(br_mobiles_13, br_mobiles_12, any_digits)
phone_spellings = st.one_of(phones, phones.map(lambda d: "+" + d), phones.map(lambda d: d + "@s.whatsapp.net"))


@settings(max_examples=300, deadline=None)
@given(phone_spellings)
def test_phone_key_is_idempotent(phone: str) -> None:
    key = phone_key(phone)
    assert phone_key(key) == key
    assert phone_key("+" + key) == key


@settings(max_examples=300, deadline=None)
@given(phone_spellings)
def test_every_variant_has_the_same_key(phone: str) -> None:
    variants = br_variants(phone)
    assert variants[0] == phone_key(phone)
    assert len(set(variants)) == len(variants)
    assert {phone_key(v) for v in variants} == {phone_key(phone)}
    assert all(br_variants(v) == variants for v in variants)


separators = st.lists(st.sampled_from([" ", "-", ".", "(", ")", "  "]), max_size=3).map("".join)


@st.composite
def typed_numbers(draw: st.DrawFn) -> str:
    """How people type numbers: digits with separators, optional + / 00 / trunk 0, sometimes letters."""
    digits = draw(st.one_of(phones, st.from_regex(r"[0-9]{8,13}", fullmatch=True)))
    prefix = draw(st.sampled_from(["", "+", "00", "0", " +", "+ "]))
    parts = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    text = prefix + draw(separators).join(parts)
    if draw(st.booleans()):
        text += draw(st.sampled_from(["", "x", "@s.whatsapp.net", "@c.us", "@lid"]))
    return text


@settings(max_examples=500, deadline=None)
@given(st.one_of(typed_numbers(), st.text(max_size=20)), st.sampled_from(["55", "1", "44"]))
def test_normalize_phone_is_idempotent(raw: str, country: str) -> None:
    try:
        once = normalize_phone(raw, country)
    except ValueError:
        return
    assert once.startswith("+") and once[1:].isdigit() and 8 <= len(once) - 1 <= 15
    assert normalize_phone(once, country) == once
    assert normalize_phone(once, "55") == once
