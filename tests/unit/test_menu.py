"""The routing menu: every answer at every level of a 3-level tree, answer forms, validation, timeouts, properties."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saas.automation.menu import (
    MAX_DEPTH,
    Bot,
    Menu,
    MenuOption,
    MenuStep,
    auto_bot,
    navigate,
    on_timeout,
    prompt_text,
    start,
    timed_out,
    validate_bot,
)

# Root (level 1) -> "2 Suporte técnico" (level 2) -> "2 Telefonia" (level 3).
TELEFONIA = Menu(
    prompt="Telefonia: o que houve?",
    options=[
        MenuOption(key="1", label="Sem sinal", queue_id=30),
        MenuOption(key="2", label="Segunda via", reply="Acesse atende.example/fatura"),
        MenuOption(key="3", label="Falar com atendente", queue_id=31),
    ],
)
SUPORTE = Menu(
    prompt="Suporte: qual produto?",
    options=[
        MenuOption(key="1", label="Internet", queue_id=20, reply="Encaminhando para o suporte de internet."),
        MenuOption(key="2", label="Telefonia", menu=TELEFONIA),
        MenuOption(key="3", label="Horário de funcionamento", reply="Seg a sex, 8h às 18h."),
    ],
)
ROOT = Menu(
    prompt="Olá! Como podemos ajudar?",
    options=[
        MenuOption(key="1", label="Vendas", queue_id=10),
        MenuOption(key="2", label="Suporte técnico", menu=SUPORTE),
        MenuOption(key="3", label="Financeiro", queue_id=40, reply="Um momento, já te atendemos."),
        MenuOption(key="4", label="Informações", reply="Somos a Loja Exemplo."),
    ],
)
BOT = Bot(
    greeting="Bem-vindo à Loja!",
    menu=ROOT,
    fallback_queue_id=99,
    timeout_reply="Vou te passar para um atendente.",
    max_invalid=3,
)
QUEUES = {10, 20, 30, 31, 40, 99}

ROOT_TEXT = "Olá! Como podemos ajudar?\n1 - Vendas\n2 - Suporte técnico\n3 - Financeiro\n4 - Informações"
SUPORTE_TEXT = "Suporte: qual produto?\n1 - Internet\n2 - Telefonia\n3 - Horário de funcionamento\n0 - Voltar"
TELEFONIA_TEXT = "Telefonia: o que houve?\n1 - Sem sinal\n2 - Segunda via\n3 - Falar com atendente\n0 - Voltar"
INVALID = "Não entendi. Responda com o número de uma das opções."


def step(
    action: str, path: tuple[str, ...], queue_id: int | None = None, *messages: str, invalid_count: int = 0
) -> MenuStep:
    return MenuStep(action, path, invalid_count, queue_id, messages)  # type: ignore[arg-type]


# --- prompt_text and start ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "expected"), [((), ROOT_TEXT), (("2",), SUPORTE_TEXT), (("2", "2"), TELEFONIA_TEXT)])
def test_prompt_text(path: tuple[str, ...], expected: str) -> None:
    assert prompt_text(BOT, path) == expected
    assert prompt_text(BOT, list(path)) == expected


@pytest.mark.parametrize(
    "path",
    [("1",), ("3",), ("4",), ("5",), ("0",), ("",), ("02",), ("2", "1"), ("2", "3"), ("2", "9"), ("2", "2", "1"),
     ("2", "2", "2", "1")],
)  # fmt: skip
def test_prompt_text_rejects_a_path_that_does_not_exist(path: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="no menu at path"):
        prompt_text(BOT, path)


def test_start_sends_greeting_then_menu() -> None:
    assert start(BOT) == ["Bem-vindo à Loja!", ROOT_TEXT]


@pytest.mark.parametrize("greeting", ["", "   "])
def test_start_without_greeting_sends_only_the_menu(greeting: str) -> None:
    assert start(Bot(menu=ROOT, greeting=greeting)) == [ROOT_TEXT]


# --- navigate: every key at every level -----------------------------------------------------------------------

EVERY_KEY: list[tuple[tuple[str, ...], str, MenuStep]] = [
    ((), "1", step("route", (), 10)),
    ((), "2", step("submenu", ("2",), None, SUPORTE_TEXT)),
    ((), "3", step("route", (), 40, "Um momento, já te atendemos.")),
    ((), "4", step("reply", (), None, "Somos a Loja Exemplo.", ROOT_TEXT)),
    (("2",), "1", step("route", ("2",), 20, "Encaminhando para o suporte de internet.")),
    (("2",), "2", step("submenu", ("2", "2"), None, TELEFONIA_TEXT)),
    (("2",), "3", step("reply", ("2",), None, "Seg a sex, 8h às 18h.", SUPORTE_TEXT)),
    (("2", "2"), "1", step("route", ("2", "2"), 30)),
    (("2", "2"), "2", step("reply", ("2", "2"), None, "Acesse atende.example/fatura", TELEFONIA_TEXT)),
    (("2", "2"), "3", step("route", ("2", "2"), 31)),
    # back
    (("2",), "0", step("back", (), None, ROOT_TEXT)),
    (("2", "2"), "0", step("back", ("2",), None, SUPORTE_TEXT)),
    (("2",), "Voltar", step("back", (), None, ROOT_TEXT)),
    (("2", "2"), "0 - Voltar", step("back", ("2",), None, SUPORTE_TEXT)),
    (("2", "2"), "0️⃣", step("back", ("2",), None, SUPORTE_TEXT)),
]


@pytest.mark.parametrize("invalid_count", [0, 1, 2])
@pytest.mark.parametrize(("path", "text", "expected"), EVERY_KEY)
def test_navigate_every_key_at_every_level(
    path: tuple[str, ...], text: str, expected: MenuStep, invalid_count: int
) -> None:
    # A valid answer resets the invalid count whatever it was.
    assert navigate(BOT, path, invalid_count, text) == expected


@pytest.mark.parametrize("path", [(), ("2",), ("2", "2")])
@pytest.mark.parametrize("key", ["5", "9", "10", "99", "07"])
def test_navigate_unknown_key_is_invalid(path: tuple[str, ...], key: str) -> None:
    assert navigate(BOT, path, 0, key) == step("invalid", path, None, INVALID, prompt_text(BOT, path), invalid_count=1)


@pytest.mark.parametrize("back", ["0", "00", "Voltar", "voltar", "0 - Voltar"])
def test_back_at_the_root_is_invalid(back: str) -> None:
    assert navigate(BOT, (), 0, back) == step("invalid", (), None, INVALID, ROOT_TEXT, invalid_count=1)


# --- navigate: answer forms -----------------------------------------------------------------------------------

TWO = step("submenu", ("2",), None, SUPORTE_TEXT)


@pytest.mark.parametrize(
    "text",
    [
        "2", "2.", "2)", "2 -", "2-", "2:", " 2 ", "\t2\n", "02", "2 )",
        "2\ufe0f\u20e3", "2\u20e3", " 2\ufe0f\u20e3 ",  # keycap, with and without the emoji selector
        "opção 2", "opcao 2", "Opção 2", "OPÇÃO 2", "opção: 2", "opcao2", "opção 2.",
        "2 - Suporte técnico", "2 - suporte tecnico", "2. Suporte Técnico", "2) SUPORTE TÉCNICO",
        "Suporte técnico", "suporte tecnico", "SUPORTE TÉCNICO", "  Suporte   técnico  ", "Suporte Te\u0301cnico",
    ],
)  # fmt: skip
def test_answer_forms(text: str) -> None:
    assert navigate(BOT, (), 0, text) == TWO


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ((), "vendas", step("route", (), 10)),
        ((), "INFORMAÇÕES", step("reply", (), None, "Somos a Loja Exemplo.", ROOT_TEXT)),
        ((), "informacoes", step("reply", (), None, "Somos a Loja Exemplo.", ROOT_TEXT)),
        (("2",), "horario de funcionamento", step("reply", ("2",), None, "Seg a sex, 8h às 18h.", SUPORTE_TEXT)),
        (("2",), "telefonia", step("submenu", ("2", "2"), None, TELEFONIA_TEXT)),
        (("2", "2"), "sem sinal", step("route", ("2", "2"), 30)),
        (("2", "2"), "Falar com Atendente", step("route", ("2", "2"), 31)),
    ],
)
def test_label_matching(path: tuple[str, ...], text: str, expected: MenuStep) -> None:
    assert navigate(BOT, path, 0, text) == expected


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), None),
        ((), ""),
        ((), "   "),
        ((), "oi"),
        ((), "1 2"),
        ((), "2 vendas"),
        ((), "2 - Vendas"),  # the line's label does not match the key
        ((), "12"),
        ((), "123"),
        ((), "-1"),
        ((), "1.5"),
        ((), "#2"),
        ((), "opção"),
        ((), "vend"),
        ((), "Vendas!"),
        ((), "suporte"),
        ((), "internet"),  # a label of another level
        (("2",), "vendas"),
        (("2",), "Sem sinal"),
        (("2", "2"), "4"),
        (("2", "2"), "telefonia"),
    ],
)
def test_invalid_answers(path: tuple[str, ...], text: str | None) -> None:
    assert navigate(BOT, path, 0, text) == step("invalid", path, None, INVALID, prompt_text(BOT, path), invalid_count=1)


def test_a_label_shared_by_two_options_matches_neither() -> None:
    bot = Bot(menu=Menu(prompt="?", options=[MenuOption(key="1", label="Sim", reply="a"),
                                              MenuOption(key="2", label="sim", queue_id=1)]))  # fmt: skip
    assert navigate(bot, (), 0, "SIM").action == "invalid"
    assert navigate(bot, (), 0, "2").action == "route"


def test_keys_take_precedence_over_labels() -> None:
    menu = Menu(
        prompt="?", options=[MenuOption(key="1", label="2", queue_id=1), MenuOption(key="2", label="x", queue_id=2)]
    )
    assert navigate(Bot(menu=menu), (), 0, "2").queue_id == 2
    assert navigate(Bot(menu=menu), (), 0, "1").queue_id == 1


def test_keycap_ten_and_two_digit_keys() -> None:
    bot = auto_bot([(i, f"Fila {i}") for i in range(1, 13)])
    assert bot is not None
    assert navigate(bot, (), 0, "\N{KEYCAP TEN}").queue_id == 10
    assert navigate(bot, (), 0, "12").queue_id == 12
    assert navigate(bot, (), 0, "1\ufe0f\u20e32\ufe0f\u20e3").queue_id == 12
    assert navigate(bot, (), 0, "fila 11").queue_id == 11
    assert navigate(bot, (), 0, "13").action == "invalid"


# --- navigate: invalid counting and giving up -----------------------------------------------------------------


@pytest.mark.parametrize("path", [(), ("2",), ("2", "2")])
def test_max_invalid_boundary(path: tuple[str, ...]) -> None:
    prompt = prompt_text(BOT, path)
    assert navigate(BOT, path, 0, "?") == step("invalid", path, None, INVALID, prompt, invalid_count=1)
    assert navigate(BOT, path, 1, "?") == step("invalid", path, None, INVALID, prompt, invalid_count=2)
    assert navigate(BOT, path, 2, "?") == step("give_up", path, 99, "Vou te passar para um atendente.", invalid_count=3)


@pytest.mark.parametrize("max_invalid", [1, 2, 5, 20])
def test_gives_up_exactly_at_max_invalid(max_invalid: int) -> None:
    bot = Bot(menu=ROOT, max_invalid=max_invalid)
    path: tuple[str, ...] = ()
    count = 0
    actions = []
    for _ in range(max_invalid):
        result = navigate(bot, path, count, None)
        actions.append(result.action)
        path, count = result.path, result.invalid_count
    assert actions == ["invalid"] * (max_invalid - 1) + ["give_up"]
    assert count == max_invalid


def test_give_up_without_fallback_or_timeout_reply() -> None:
    bot = Bot(menu=ROOT, max_invalid=1)
    assert navigate(bot, (), 0, "x") == step("give_up", (), None, invalid_count=1)


def test_a_valid_answer_resets_the_count() -> None:
    first = navigate(BOT, (), 0, "x")
    second = navigate(BOT, first.path, first.invalid_count, "nada")
    assert second.invalid_count == 2
    into = navigate(BOT, second.path, second.invalid_count, "2")
    assert (into.action, into.invalid_count) == ("submenu", 0)
    again = navigate(BOT, into.path, into.invalid_count, "x")
    assert (again.action, again.invalid_count) == ("invalid", 1)
    info = navigate(BOT, again.path, 2, "3")
    assert (info.action, info.invalid_count) == ("reply", 0)
    back = navigate(BOT, info.path, 2, "0")
    assert (back.action, back.invalid_count) == ("back", 0)


def test_navigate_rejects_bad_state() -> None:
    with pytest.raises(ValueError, match="no menu at path"):
        navigate(BOT, ("9",), 0, "1")
    with pytest.raises(ValueError, match="invalid_count"):
        navigate(BOT, (), -1, "1")


# --- timeouts -------------------------------------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("timeout_s", "elapsed", "expected"),
    [
        (900, timedelta(seconds=900), True),
        (900, timedelta(seconds=899), False),
        (900, timedelta(seconds=899, microseconds=999999), False),
        (900, timedelta(seconds=901), True),
        (900, timedelta(0), False),
        (900, timedelta(seconds=-5000), False),  # skewed clock: prompted in the future
        (1, timedelta(seconds=1), True),
        (86400, timedelta(days=1), True),
        (86400, timedelta(days=1) - timedelta(seconds=1), False),
        (0, timedelta(days=365), False),
        (0, timedelta(0), False),
    ],
)
def test_timed_out_boundary(timeout_s: int, elapsed: timedelta, expected: bool) -> None:
    assert timed_out(Bot(menu=ROOT, timeout_s=timeout_s), T0, T0 + elapsed) is expected


def test_timed_out_compares_instants_across_offsets() -> None:
    sao_paulo = timezone(timedelta(hours=-3))
    prompted = datetime(2026, 3, 2, 9, 0, tzinfo=sao_paulo)  # 12:00 UTC
    assert timed_out(BOT, prompted, T0 + timedelta(seconds=900))
    assert not timed_out(BOT, prompted, T0 + timedelta(seconds=899))


@pytest.mark.parametrize("timeout_s", [0, 900])
def test_timed_out_rejects_naive_datetimes(timeout_s: int) -> None:
    bot = Bot(menu=ROOT, timeout_s=timeout_s)
    with pytest.raises(ValueError, match="prompted_at must be timezone-aware"):
        timed_out(bot, T0.replace(tzinfo=None), T0)
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        timed_out(bot, T0, T0.replace(tzinfo=None))


def test_on_timeout() -> None:
    assert on_timeout(BOT) == step("give_up", (), 99, "Vou te passar para um atendente.")
    assert on_timeout(Bot(menu=ROOT)) == step("give_up", (), None)


# --- auto_bot -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("queues", [[], [(7, "Vendas")]])
def test_auto_bot_needs_two_queues(queues: list[tuple[int, str]]) -> None:
    assert auto_bot(queues) is None


def test_auto_bot_two_queues() -> None:
    bot = auto_bot([(7, "Vendas"), (3, "Suporte")])
    assert bot == Bot(
        menu=Menu(
            prompt="Olá! Escolha um departamento:",
            options=[MenuOption(key="1", label="Vendas", queue_id=7), MenuOption(key="2", label="Suporte", queue_id=3)],
        )
    )
    assert start(bot) == ["Olá! Escolha um departamento:\n1 - Vendas\n2 - Suporte"]
    validate_bot(bot, {3, 7})


def test_auto_bot_five_queues_in_the_given_order() -> None:
    queues = [(50, "E"), (10, "A"), (40, "D"), (20, "B"), (30, "C")]
    bot = auto_bot(queues, prompt="Escolha:", greeting="Oi!")
    assert bot is not None
    assert start(bot) == ["Oi!", "Escolha:\n1 - E\n2 - A\n3 - D\n4 - B\n5 - C"]
    assert [navigate(bot, (), 0, str(n)).queue_id for n in range(1, 6)] == [50, 10, 40, 20, 30]
    assert bot.fallback_queue_id is None


def test_auto_bot_more_than_twenty_queues_is_an_error() -> None:
    assert auto_bot([(i, f"Fila {i}") for i in range(20)]) is not None
    with pytest.raises(ValueError, match="1 to 20 options"):
        auto_bot([(i, f"Fila {i}") for i in range(21)])


# --- validation -----------------------------------------------------------------------------------------------


def test_validate_bot_accepts_the_example() -> None:
    validate_bot(BOT, QUEUES)
    validate_bot(BOT, sorted(QUEUES))


@pytest.mark.parametrize(
    ("bot", "queues", "message"),
    [
        (BOT, QUEUES - {10}, "option 1: unknown queue 10"),
        (BOT, QUEUES - {20}, "option 2 > 1: unknown queue 20"),
        (BOT, QUEUES - {31}, "option 2 > 2 > 3: unknown queue 31"),
        (BOT, QUEUES - {99}, "fallback_queue_id: unknown queue 99"),
        (
            BOT,
            set(),
            "^fallback_queue_id: unknown queue 99; option 1: unknown queue 10; option 2 > 1: unknown queue 20; "
            "option 2 > 2 > 1: unknown queue 30; option 2 > 2 > 3: unknown queue 31; option 3: unknown queue 40$",
        ),
    ],
)
def test_validate_bot_unknown_queues(bot: Bot, queues: set[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_bot(bot, queues)


OPTION_SHAPES: list[tuple[dict[str, object], str]] = [
    ({"key": "0", "label": "x", "queue_id": 1}, "key must be a number from 1 to 99"),
    ({"key": "", "label": "x", "queue_id": 1}, "key must be"),
    ({"key": "01", "label": "x", "queue_id": 1}, "key must be"),
    ({"key": "100", "label": "x", "queue_id": 1}, "key must be"),
    ({"key": "a", "label": "x", "queue_id": 1}, "key must be"),
    ({"key": " 1", "label": "x", "queue_id": 1}, "key must be"),
    ({"key": "-1", "label": "x", "queue_id": 1}, "key must be"),
    ({"key": "1", "label": "", "queue_id": 1}, "label must not be empty"),
    ({"key": "1", "label": "   ", "queue_id": 1}, "label must not be empty"),
    ({"key": "1", "label": "x" * 101, "queue_id": 1}, "label must be at most 100 characters, got 101"),
    ({"key": "1", "label": "a\nb", "queue_id": 1}, "label must be a single line"),
    ({"key": "1", "label": "x", "reply": ""}, "reply must not be empty"),
    ({"key": "1", "label": "x", "reply": "y" * 4097}, "reply must be at most 4096"),
    ({"key": "1", "label": "x"}, "needs a queue_id, a menu or a reply"),
    ({"key": "1", "label": "x", "queue_id": 1, "menu": {"prompt": "p", "options": [{"key": "1", "label": "a", "queue_id": 1}]}}, "not both"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "message"), OPTION_SHAPES)
def test_option_shape_errors(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        msgspec.convert(fields, MenuOption)
    # decoded from JSON, the error also carries msgspec's path to the option
    raw = msgspec.json.encode({"menu": {"prompt": "p", "options": [fields]}})
    with pytest.raises(msgspec.ValidationError, match=rf"{message}.*\$\.menu\.options\[0\]"):
        msgspec.json.decode(raw, type=Bot)


def test_option_limits_are_inclusive() -> None:
    MenuOption(key="99", label="x" * 100, reply="y" * 4096)
    MenuOption(key="1", label="x", queue_id=1, reply="Encaminhando")


def menu_of(*keys: str) -> Menu:
    return Menu(prompt="p", options=[MenuOption(key=k, label=f"L{k}", queue_id=1) for k in keys])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Menu(prompt="", options=menu_of("1").options), "prompt must not be empty"),
        (lambda: Menu(prompt=" \n ", options=menu_of("1").options), "prompt must not be empty"),
        (lambda: Menu(prompt="p" * 1001, options=menu_of("1").options), "prompt must be at most 1000"),
        (lambda: Menu(prompt="p", options=[]), "1 to 20 options, got 0"),
        (lambda: menu_of(*(str(n) for n in range(1, 22))), "1 to 20 options, got 21"),
        (lambda: menu_of("1", "2", "1"), "duplicate keys 1"),
        (lambda: menu_of("3", "10", "3", "10", "2"), "duplicate keys 3, 10"),
    ],
)
def test_menu_shape_errors(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_menu_limits_are_inclusive() -> None:
    Menu(prompt="p" * 1000, options=menu_of(*(str(n) for n in range(1, 21))).options)


def nested(levels: int) -> Menu:
    menu = menu_of("1")
    for _ in range(levels - 1):
        menu = Menu(prompt="p", options=[MenuOption(key="1", label="deeper", menu=menu)])
    return menu


def test_depth() -> None:
    deepest = nested(MAX_DEPTH)
    bot = Bot(menu=deepest)
    validate_bot(bot, {1})
    assert prompt_text(bot, ["1"] * (MAX_DEPTH - 1)).endswith("0 - Voltar")
    with pytest.raises(ValueError, match="nest at most 5 levels"):
        nested(MAX_DEPTH + 1)


BOT_SETTINGS: list[tuple[dict[str, object], str]] = [
    ({"timeout_s": -1}, "timeout_s must be 0 \\(never\\) to 86400, got -1"),
    ({"timeout_s": 86401}, "timeout_s must be 0 \\(never\\) to 86400, got 86401"),
    ({"max_invalid": 0}, "max_invalid must be 1 to 20, got 0"),
    ({"max_invalid": 21}, "max_invalid must be 1 to 20, got 21"),
    ({"invalid_reply": ""}, "invalid_reply must not be empty"),
    ({"invalid_reply": "x" * 4097}, "invalid_reply must be at most 4096"),
    ({"greeting": "x" * 4097}, "greeting must be at most 4096"),
    ({"timeout_reply": "x" * 4097}, "timeout_reply must be at most 4096"),
]


@pytest.mark.parametrize(("fields", "message"), BOT_SETTINGS)
def test_bot_setting_errors(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        msgspec.convert(
            {"menu": {"prompt": "p", "options": [{"key": "1", "label": "a", "queue_id": 1}]}, **fields}, Bot
        )
    # validate_bot finds it too, even on a bot that skipped construction checks
    bot = Bot(menu=menu_of("1"))
    for name, value in fields.items():
        msgspec.structs.force_setattr(bot, name, value)
    with pytest.raises(ValueError, match="bot: " + message):
        validate_bot(bot, {1})


@pytest.mark.parametrize(
    "fields",
    [{"timeout_s": 0}, {"timeout_s": 86400}, {"max_invalid": 1}, {"max_invalid": 20}, {"greeting": ""},
     {"timeout_reply": ""}, {"greeting": "x" * 4096}, {"invalid_reply": "x" * 4096}],
)  # fmt: skip
def test_bot_setting_limits_are_inclusive(fields: dict[str, object]) -> None:
    bot = msgspec.convert(
        {"menu": {"prompt": "p", "options": [{"key": "1", "label": "a", "queue_id": 1}]}, **fields}, Bot
    )
    validate_bot(bot, {1})
    assert all(getattr(bot, name) == value for name, value in fields.items())


def test_unknown_fields_are_rejected_when_decoding() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field `queue`"):
        msgspec.json.decode(b'{"menu": {"prompt": "p", "options": [{"key": "1", "label": "a", "queue": 1}]}}', type=Bot)
    with pytest.raises(msgspec.ValidationError, match="unknown field `timeout`"):
        msgspec.json.decode(
            b'{"timeout": 5, "menu": {"prompt": "p", "options": [{"key": "1", "label": "a", "queue_id": 1}]}}', type=Bot
        )


def test_a_bot_round_trips_through_json() -> None:
    assert msgspec.json.decode(msgspec.json.encode(BOT), type=Bot) == BOT


def corrupt(bot: Bot, path: Sequence[str], **fields: object) -> Bot:
    """``bot`` with the option at ``path`` changed in place, skipping construction checks (as a buggy caller might)."""
    menu = bot.menu
    for key in path[:-1]:
        inner = next(o for o in menu.options if o.key == key).menu
        assert inner is not None
        menu = inner
    option = next(o for o in menu.options if o.key == path[-1])
    for name, value in fields.items():
        msgspec.structs.force_setattr(option, name, value)
    return bot


@pytest.mark.parametrize(
    ("path", "fields", "message"),
    [
        (("2", "1"), {"key": "0"}, "option 2 > 0: key must be"),
        (("2", "2", "3"), {"label": ""}, "option 2 > 2 > 3: label must not be empty"),
        (("2", "2", "2"), {"reply": None}, "option 2 > 2 > 2: an option needs a queue_id, a menu or a reply"),
        (("2",), {"queue_id": 10}, "option 2: an option routes to a queue or opens a menu, not both"),
        (("4",), {"reply": "   "}, "option 4: reply must not be empty"),
        (("2", "3"), {"key": "1"}, "menu of option 2: duplicate keys 1"),
        (("1",), {"label": "x" * 101}, "option 1: label must be at most 100"),
    ],
)
def test_validate_bot_names_the_path(path: tuple[str, ...], fields: dict[str, object], message: str) -> None:
    bot = msgspec.json.decode(msgspec.json.encode(BOT), type=Bot)  # a private copy to corrupt
    with pytest.raises(ValueError, match=message):
        validate_bot(corrupt(bot, path, **fields), QUEUES)


def test_validate_bot_names_a_menu_path() -> None:
    bot = msgspec.json.decode(msgspec.json.encode(BOT), type=Bot)
    telefonia = bot.menu.options[1].menu
    assert telefonia is not None and telefonia.options[1].menu is not None
    msgspec.structs.force_setattr(telefonia.options[1].menu, "prompt", "")
    with pytest.raises(ValueError, match="menu of option 2 > 2: prompt must not be empty"):
        validate_bot(bot, QUEUES)
    msgspec.structs.force_setattr(bot.menu, "options", [])
    with pytest.raises(ValueError, match="menu: a menu has 1 to 20 options, got 0") as raised:
        validate_bot(bot, QUEUES)
    assert str(raised.value).startswith("menu: ")


def test_validate_bot_finds_a_tree_too_deep() -> None:
    deepest = nested(MAX_DEPTH)
    leaf = deepest
    for _ in range(MAX_DEPTH - 1):
        inner = leaf.options[0].menu
        assert inner is not None
        leaf = inner
    msgspec.structs.force_setattr(leaf.options[0], "queue_id", None)
    msgspec.structs.force_setattr(leaf.options[0], "menu", menu_of("1"))
    with pytest.raises(ValueError, match="menu of option 1 > 1 > 1 > 1 > 1: menus nest at most 5 levels"):
        validate_bot(Bot(menu=deepest), {1})


# --- properties -----------------------------------------------------------------------------------------------

labels = st.sampled_from(["Vendas", "vendas", "Suporte", "Financeiro", "Informações", "Sim", "Não", "Outro"])


@st.composite
def menus(draw: st.DrawFn, level: int = 1) -> Menu:
    keys = draw(st.lists(st.integers(1, 99).map(str), min_size=1, max_size=5, unique=True))
    options = []
    for key in keys:
        kinds = ["route", "reply", "route_reply"] + (["menu"] if level < MAX_DEPTH else [])
        kind = draw(st.sampled_from(kinds))
        label = draw(labels)
        if kind == "menu":
            options.append(MenuOption(key=key, label=label, menu=draw(menus(level + 1))))
        elif kind == "reply":
            options.append(MenuOption(key=key, label=label, reply="info"))
        else:
            reply = "ok" if kind == "route_reply" else None
            options.append(MenuOption(key=key, label=label, queue_id=draw(st.integers(1, 5)), reply=reply))
    return Menu(prompt=f"level {level}", options=options)


bots = st.builds(
    Bot,
    menu=menus(),
    max_invalid=st.integers(1, 5),
    fallback_queue_id=st.none() | st.just(9),
    timeout_reply=st.sampled_from(["", "bye"]),
)
answers = st.one_of(
    st.none(),
    st.integers(0, 100).map(str),
    st.integers(0, 12).map(lambda n: f"{n}\ufe0f\u20e3"),
    labels,
    st.sampled_from(["voltar", "0 - Voltar", "", " ", "opção 1", "1.", "2)", "3 -", "\N{KEYCAP TEN}"]),
    st.text(max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(bots, st.lists(answers, max_size=30))
def test_any_answers_keep_the_state_valid(bot: Bot, texts: list[str | None]) -> None:
    validate_bot(bot, range(1, 10))
    path: tuple[str, ...] = ()
    count = 0
    for text in texts:
        result = navigate(bot, path, count, text)
        prompt_text(bot, result.path)  # never raises on a returned path
        if result.action == "give_up":
            assert result.invalid_count >= bot.max_invalid
            assert result.queue_id == bot.fallback_queue_id
        else:
            assert result.invalid_count < bot.max_invalid
        if result.action == "route":
            assert result.queue_id is not None
        elif result.action != "give_up":
            assert result.queue_id is None and result.messages
        if result.action in ("submenu", "back", "reply", "invalid"):
            assert result.messages[-1] == prompt_text(bot, result.path)
        if result.action in ("route", "give_up"):
            path, count = (), 0  # the conversation ended; the next one starts at the root
        else:
            path, count = result.path, result.invalid_count
