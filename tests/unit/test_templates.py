"""Quick-reply templates: finding, checking and rendering variables, first names and the greeting of the hour."""

from __future__ import annotations

from datetime import UTC, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saas.automation.templates import (
    VARIABLES,
    check_template,
    first_name,
    greeting_for,
    render,
    template_variables,
)

VALUES: dict[str, str | None] = {
    "contact.name": "Maria Souza",
    "contact.first_name": "Maria",
    "contact.phone": "+5511988887777",
    "agent.name": "João Lima",
    "agent.first_name": "João",
    "ticket.number": "1042",
    "queue.name": "Suporte",
    "connection.name": "Loja Centro",
    "greeting": "Bom dia",
}


def test_the_variables() -> None:
    expected = {
        "contact.name", "contact.first_name", "contact.phone", "agent.name", "agent.first_name", "ticket.number",
        "queue.name", "connection.name", "greeting",
    }  # fmt: skip
    assert expected == VARIABLES
    assert isinstance(VARIABLES, frozenset)


# --- template_variables ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "names"),
    [
        ("", set()),
        ("Olá!", set()),
        ("{{contact.name}}", {"contact.name"}),
        ("{{ agent.name }}", {"agent.name"}),
        ("{{   agent.name}} e {{ticket.number   }}", {"agent.name", "ticket.number"}),
        ("{{\ngreeting\t}}", {"greeting"}),
        ("{{contact.name}} {{contact.name}}", {"contact.name"}),
        ("{{foo}} {{a.b.c}} {{snake_case.x_y}}", {"foo", "a.b.c", "snake_case.x_y"}),
        ("{{{contact.name}}}", {"contact.name"}),
        ("{{ Contact.Name }} {{contact. name}} {{contact..name}} {{.x}} {{x.}} {{}} {{1}}", set()),
        ("{contact.name} {{contact.name} {contact.name}}", set()),
        ("{{ contact.name", set()),
    ],
)
def test_template_variables(template: str, names: set[str]) -> None:
    assert template_variables(template) == names


# --- check_template -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "",
        "Olá {{contact.first_name}}, aqui é {{ agent.name }} do {{queue.name}}. Protocolo {{ticket.number}}.",
        "{{greeting}}! {{contact.phone}} {{connection.name}} {{agent.first_name}} {{contact.name}}",
        "chaves soltas { } } {x} são texto",
        "}} também",
        "{{{contact.name}}}",
    ],
)
def test_check_template_accepts(template: str) -> None:
    check_template(template)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{contact.nome}}", "^unknown variable: contact.nome$"),
        ("{{zeta}} {{alpha.b}} {{contact.name}} {{zeta}}", "^unknown variables: alpha.b, zeta$"),
        ("Olá {{contact.name", r"^unclosed '\{\{' at character 4$"),
        ("{{contact.name}} {{", r"^unclosed '\{\{' at character 17$"),
        ("{{ foo {{contact.name}}", r"^unclosed '\{\{' at character 0$"),
        ("{{contact.name}", r"^unclosed '\{\{' at character 0$"),
        ("{{ Contact.Name }}", r"^malformed variable '\{\{ Contact.Name \}\}': names are lowercase words"),
        ("{{}}", r"^malformed variable '\{\{\}\}'"),
        ("{{contact..name}}", r"^malformed variable '\{\{contact..name\}\}'"),
        ("{{ ticket-number }}", r"^malformed variable"),
        (
            "{{b}} {{a}} {{X}} {{",
            r"^unknown variables: a, b; malformed variable '\{\{X\}\}'.*; unclosed '\{\{' at character 18$",
        ),
    ],
)
def test_check_template_rejects(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_template(template)


def test_check_template_with_its_own_allowed_set() -> None:
    check_template("{{order.id}}", allowed={"order.id"})
    with pytest.raises(ValueError, match=r"unknown variable: contact\.name"):
        check_template("{{contact.name}}", allowed={"order.id"})
    with pytest.raises(ValueError, match="unknown variable: x"):
        check_template("{{x}}", allowed=[])


# --- render ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Olá {{contact.first_name}}!", "Olá Maria!"),
        ("{{greeting}}, {{ contact.name }}. Aqui é {{agent.first_name}} ({{queue.name}}).",
         "Bom dia, Maria Souza. Aqui é João (Suporte)."),
        ("Protocolo #{{ticket.number}} - {{connection.name}} - {{contact.phone}} - {{agent.name}}",
         "Protocolo #1042 - Loja Centro - +5511988887777 - João Lima"),
        ("{{contact.name}}{{contact.name}}", "Maria SouzaMaria Souza"),
        ("{{{contact.first_name}}}", "{Maria}"),
        ("<b>{{contact.first_name}}</b> & {{queue.name}}", "<b>Maria</b> & Suporte"),  # no HTML escaping
        ("  dois  espaços  {{queue.name}}  ficam  ", "  dois  espaços  Suporte  ficam  "),
        ("linha 1\n{{contact.first_name}}\nlinha 3", "linha 1\nMaria\nlinha 3"),
        ("{{ Contact.Name }} {{contact.first_name}} {{", "{{ Contact.Name }} Maria {{"),  # broken parts stay text
    ],
)  # fmt: skip
def test_render(template: str, expected: str) -> None:
    assert render(template, VALUES) == expected


EMPTY: list[tuple[str, str]] = [
    ("Olá {{contact.name}} tudo bem?", "Olá tudo bem?"),
    ("Olá {{contact.name}}, tudo bem?", "Olá, tudo bem?"),
    ("Obrigado {{contact.name}}!", "Obrigado!"),
    ("Obrigado {{contact.name}}.", "Obrigado."),
    ("Obrigado {{contact.name}}", "Obrigado"),
    ("{{contact.name}} bem-vindo", "bem-vindo"),
    ("{{contact.name}}", ""),
    ("Olá{{contact.name}}!", "Olá!"),
    ("a {{contact.name}}{{ticket.number}} b", "a b"),
    ("a {{contact.name}} {{ticket.number}} b", "a b"),
    ("{{contact.name}} {{ticket.number}} b", "b"),
    ("a {{contact.name}} {{ticket.number}}", "a"),
    ("linha\n{{contact.name}} texto", "linha\ntexto"),
    ("texto {{contact.name}}\nlinha", "texto\nlinha"),
    ("a  {{contact.name}}  b", "a   b"),  # the template's own double spaces are kept; only the one it left goes
    ("Olá, {{contact.name}}", "Olá,"),
    ("(  {{contact.name}} )", "(  )"),
    ("[{{contact.name}}]", "[]"),
]


@pytest.mark.parametrize(
    "missing", [{}, {"contact.name": None, "ticket.number": None}, {"contact.name": "", "ticket.number": ""}]
)
@pytest.mark.parametrize(("template", "expected"), EMPTY)
def test_render_empty_values_leave_no_gap(template: str, expected: str, missing: dict[str, str | None]) -> None:
    assert render(template, missing) == expected


def test_render_next_to_a_value_keeps_the_value_whole() -> None:
    assert render("{{a}}{{b}}!", {"a": "fim "}) == "fim !"
    assert render("{{a}} {{b}} c", {"a": "x"}) == "x c"


def test_render_inserts_values_once() -> None:
    # A customer's name that looks like a variable is not expanded again.
    assert render("Olá {{contact.name}}", {"contact.name": "{{agent.name}}", "agent.name": "João"}) == (
        "Olá {{agent.name}}"
    )


def test_render_fills_unknown_variables_from_values() -> None:
    assert render("Pedido {{order.id}}", {"order.id": "77"}) == "Pedido 77"


# --- first_name and greeting_for ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "first"),
    [(None, ""), ("", ""), ("   ", ""), ("Maria", "Maria"), ("Maria Souza", "Maria"), ("  joão  da silva ", "joão"),
     ("Ana\tClara", "Ana"), ("Dr. Pedro", "Dr.")],
)  # fmt: skip
def test_first_name(name: str | None, first: str) -> None:
    assert first_name(name) == first


@pytest.mark.parametrize(
    ("wall", "greeting"),
    [
        (time(0, 0), "Boa noite"),
        (time(4, 59, 59, 999999), "Boa noite"),
        (time(5, 0), "Bom dia"),
        (time(9, 30), "Bom dia"),
        (time(11, 59, 59), "Bom dia"),
        (time(12, 0), "Boa tarde"),
        (time(15, 0), "Boa tarde"),
        (time(17, 59, 59, 999999), "Boa tarde"),
        (time(18, 0), "Boa noite"),
        (time(23, 59, 59), "Boa noite"),
        (time(12, 0, tzinfo=UTC), "Boa tarde"),  # an aware time is read on its own wall clock
    ],
)
def test_greeting_for(wall: time, greeting: str) -> None:
    assert greeting_for(wall) == greeting


# --- properties -----------------------------------------------------------------------------------------------

names = st.sampled_from(sorted(VARIABLES))
spaces = st.sampled_from(["", " ", "  ", "\n"])
# Literal text may hold a lone "}" but never "{", so every "{{" of a template starts one of its variables and a
# "{{" in the output could only be a variable left behind.
no_open_brace = st.characters(blacklist_characters="{")
literals = st.text(alphabet=no_open_brace, max_size=12)
values = st.dictionaries(names, st.none() | st.text(alphabet=no_open_brace, max_size=8))
# A template as (literal, variable name) pairs; the name None means the part is only text.
parts = st.lists(st.tuples(literals, st.none() | st.tuples(spaces, names, spaces)), max_size=8)


def template_of(pieces: list[tuple[str, tuple[str, str, str] | None]]) -> str:
    return "".join(text + ("" if var is None else "{{" + "".join(var) + "}}") for text, var in pieces)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), values)
def test_render_without_variables_is_identity(text: str, given_values: dict[str, str | None]) -> None:
    if template_variables(text):
        return
    assert render(text, given_values) == text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=no_open_brace, max_size=60), values)
def test_render_of_brace_free_text_is_identity(text: str, given_values: dict[str, str | None]) -> None:
    assert render(text, given_values) == text


@settings(max_examples=300, deadline=None)
@given(parts, values)
def test_render_leaves_no_known_variable(
    pieces: list[tuple[str, tuple[str, str, str] | None]], given_values: dict[str, str | None]
) -> None:
    template = template_of(pieces)
    check_template(template)
    assert template_variables(template) == {var[1] for _, var in pieces if var is not None}
    rendered = render(template, given_values)
    assert "{{" not in rendered
    assert not template_variables(rendered)


@settings(max_examples=300, deadline=None)
@given(parts)
def test_render_with_every_value_keeps_the_text_between_variables(
    pieces: list[tuple[str, tuple[str, str, str] | None]],
) -> None:
    filled = {name: f"<{name}>" for name in VARIABLES}
    expected = "".join(text + ("" if var is None else filled[var[1]]) for text, var in pieces)
    assert render(template_of(pieces), filled) == expected
