"""Reading a satisfaction rating: every accepted form, and the messages that must not be taken for a rating."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saas.automation.csat import RATING_MAX, RATING_MIN, parse_rating

ACCEPTED: list[tuple[str, int]] = [
    # bare digits, with whitespace and punctuation
    ("1", 1), ("2", 2), ("3", 3), ("4", 4), ("5", 5),
    (" 4 ", 4), ("\n5\n", 5), ("5!", 5), ("5!!!", 5), ("5.", 5), ("3?", 3),
    # "nota"
    ("nota 5", 5), ("Nota: 4", 4), ("NOTA 3", 3), ("nota=2", 2), ("nota - 1", 1), ("nota é 2", 2), ("nota5", 5),
    ("dou nota 5", 5), ("Minha nota é 4", 4), ("muito bom, nota 5", 5), ("nota 4/5", 4),
    # comments after the digit
    ("5 estrelas", 5), ("1 estrela", 1), ("5 - ótimo", 5), ("5, muito bom obrigado", 5), ("2 demorou muito", 2),
    ("5 ⭐", 5), ("5 👍", 5), ("4 - uma maravilha", 4),  # "uma" the article is no second rating
    # a scale of 5
    ("4/5", 4), ("5/5", 5), ("1/5", 1), ("4 / 5", 4), ("3 de 5", 3), ("nota 3 de 5", 3),
    # keycaps
    ("5\ufe0f\u20e3", 5), ("1\ufe0f\u20e3", 1), ("3\u20e3", 3), ("nota 4\ufe0f\u20e3", 4), ("5\ufe0f\u20e3!", 5),
    # stars
    ("⭐", 1), ("⭐⭐⭐", 3), ("⭐⭐⭐⭐⭐", 5), ("⭐\ufe0f⭐\ufe0f", 2), ("★", 1), ("★★★★", 4), ("★★★★★", 5),
    ("⭐ ⭐ ⭐", 3), (" ★★ ", 2), ("★★★☆☆", 3), ("⭐☆☆☆☆", 1), ("🌟🌟🌟🌟", 4), ("⭐★", 2),
    # number words, alone or after "nota"
    ("um", 1), ("uma", 1), ("dois", 2), ("duas", 2), ("três", 3), ("tres", 3), ("quatro", 4), ("cinco", 5),
    ("Cinco", 5), ("CINCO!", 5), ("Três.", 3), ("nota cinco", 5), ("Nota: quatro", 4), ("nota três", 3),
    ("cinco estrelas", 5), ("uma estrela", 1), ("nota um", 1),
    # exactly 80 characters is still a rating
    ("5" + " " + "x" * 78, 5),
]  # fmt: skip


@pytest.mark.parametrize(("text", "rating"), ACCEPTED)
def test_accepted(text: str, rating: int) -> None:
    assert parse_rating(text) == rating


REJECTED: list[str | None] = [
    None, "", "   ", "\n",
    # out of range and other numbers
    "0", "6", "9", "10", "55", "11", "05", "-1", "+5", "#5", "5.0", "4,5", "4.5",
    # two tokens
    "1 2", "3 ou 4", "4 ou 5", "5 5", "nota 5 nota 4", "3 ou quatro", "cinco 4", "nota 5, cinco", "dois três",
    # other digits in the message
    "my order 12345", "pedido 123", "5 estrelas, mas demorou 2 dias", "5 ⭐ 2", "2 caixas de 12",
    # other scales
    "5/10", "8/10", "10/10", "3 de 10", "6/5", "0/5", "nota 5/10", "nota dez", "nota zero", "cinco de dez",
    # a number word used as an article, or buried in a sentence
    "um ótimo atendimento", "uma pena", "umas", "cincoo", "duas vezes", "quatro horas esperando",
    # digits that do not open the message nor follow "nota"
    "preciso de 2 caixas", "obrigado 5", "foi 3", "⭐ 5",
    # no rating at all
    "nota", "ótimo", "obrigado!", "estrelas", "👍", "☆☆☆", "⭐⭐⭐⭐⭐⭐", "★★★★★★",
    # too long: a conversation, not a rating
    "5 " + "x" * 79,
    "nota 5 " + "muito bom " * 10,
]  # fmt: skip


@pytest.mark.parametrize("text", REJECTED)
def test_rejected(text: str | None) -> None:
    assert parse_rating(text) is None


def test_range_constants() -> None:
    assert (RATING_MIN, RATING_MAX) == (1, 5)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=100))
def test_any_text_gives_none_or_a_rating_in_range(text: str) -> None:
    rating = parse_rating(text)
    assert rating is None or RATING_MIN <= rating <= RATING_MAX


@settings(max_examples=300, deadline=None)
@given(st.integers(RATING_MIN, RATING_MAX), st.text(alphabet=" !.,-abcdefghijklmnopqrstuvxz", max_size=40))
def test_a_digit_then_a_comment_without_digits_is_that_rating(rating: int, comment: str) -> None:
    text = f"{rating} - {comment}"
    if any(word in text.split() for word in ("dez", "dois", "duas", "tres", "quatro", "cinco", "zero")):
        return
    assert parse_rating(text) == rating
