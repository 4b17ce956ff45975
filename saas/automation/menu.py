"""The chatbot menu that routes a new conversation to a queue: its shape, its texts and one step per answer.

Pure and clock-free: the caller stores the conversation's ``path`` (the option keys from the root menu to the menu
being shown) and ``invalid_count`` on the ticket, feeds each customer message to ``navigate`` and sends the
returned messages. Decisions, stated once so every function agrees:

* **Shape.** An option routes (``queue_id``, optionally with a ``reply`` sent on routing), opens a nested ``menu``,
  or only answers (``reply``, then the same menu again). Keys are ``"1"``..``"99"`` without leading zeros, unique
  per menu; ``"0"`` is reserved for "back". The root menu is level 1 and menus nest at most 5 levels deep.
* **Checks.** Every struct checks its own shape in ``__post_init__`` (so decoding bad JSON fails with msgspec's
  path to the field); ``validate_bot`` repeats all of it from the root, adds what needs the tenant's queue list,
  and names each problem by its option path, e.g. ``option 2 > 1: unknown queue 7``.
* **Texts.** ``prompt`` is 1..1000 characters and ``label`` 1..100 (one line: the menu shows ``<key> - <label>``);
  replies, the greeting and the other bot texts may be up to 4096 (WhatsApp's text limit). Blank counts as empty.
* **Answers.** Surrounding whitespace, trailing ``.``, ``)``, ``-`` and ``:``, keycap emojis (``2️⃣``, ``🔟``), leading
  zeros and an ``opção``/``opcao`` prefix are ignored; so is a copy of a whole line (``2 - Vendas``) when the label
  matches. Otherwise the text may be an option's label (ignoring case, accents and extra spaces); a label shared
  by two options matches neither. ``0`` or ``voltar`` goes back, except at the root where it is invalid.
* **State after a step.** ``route`` and ``give_up`` keep the path where the conversation ended (any returned path is
  valid for ``prompt_text``); ``on_timeout`` has no path to keep and returns the root. A valid answer resets
  ``invalid_count``; the answer that reaches ``max_invalid`` gives up to ``fallback_queue_id``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

__all__ = [
    "MAX_DEPTH",
    "Bot",
    "Menu",
    "MenuOption",
    "MenuStep",
    "StepAction",
    "auto_bot",
    "navigate",
    "on_timeout",
    "prompt_text",
    "start",
    "timed_out",
    "validate_bot",
]

MAX_DEPTH = 5
"""Menus nest at most this many levels, the root menu being level 1."""

StepAction = Literal["route", "submenu", "reply", "back", "invalid", "give_up"]

_KEY = re.compile(r"[1-9][0-9]?")
_LABEL_MAX = 100
_PROMPT_MAX = 1000
_TEXT_MAX = 4096
_OPTIONS_MAX = 20
_TIMEOUT_MAX = 86400
_MAX_INVALID_MAX = 20
_BACK = "0 - Voltar"
# After folding: an optional "opcao" prefix, one or two digits, one optional closing mark, maybe the label.
_ANSWER = re.compile(r"(?:opcao\s*:?\s*)?([0-9]{1,2})\s*(?:[.):\-]\s*(.*))?")


def _text_problem(text: str, name: str, max_len: int, *, may_be_empty: bool = False) -> str | None:
    if not text.strip():
        return None if may_be_empty else f"{name} must not be empty"
    if len(text) > max_len:
        return f"{name} must be at most {max_len} characters, got {len(text)}"
    return None


def _option_problems(option: MenuOption) -> list[str]:
    problems: list[str] = []
    if _KEY.fullmatch(option.key) is None:
        problems.append(f"key must be a number from 1 to 99 without leading zeros (0 is 'back'), got {option.key!r}")
    if (problem := _text_problem(option.label, "label", _LABEL_MAX)) is not None:
        problems.append(problem)
    elif "\n" in option.label or "\r" in option.label:
        problems.append("label must be a single line")
    if option.reply is not None and (problem := _text_problem(option.reply, "reply", _TEXT_MAX)) is not None:
        problems.append(problem)
    if option.queue_id is not None and option.menu is not None:
        problems.append("an option routes to a queue or opens a menu, not both")
    if option.queue_id is None and option.menu is None and option.reply is None:
        problems.append("an option needs a queue_id, a menu or a reply")
    return problems


def _height(menu: Menu) -> int:
    return 1 + max((_height(o.menu) for o in menu.options if o.menu is not None), default=0)


def _menu_problems(menu: Menu) -> list[str]:
    problems: list[str] = []
    if (problem := _text_problem(menu.prompt, "prompt", _PROMPT_MAX)) is not None:
        problems.append(problem)
    if not 1 <= len(menu.options) <= _OPTIONS_MAX:
        problems.append(f"a menu has 1 to {_OPTIONS_MAX} options, got {len(menu.options)}")
    keys = [o.key for o in menu.options]
    duplicates = sorted({k for k in keys if keys.count(k) > 1}, key=lambda k: (len(k), k))
    if duplicates:
        problems.append(f"duplicate keys {', '.join(duplicates)}")
    return problems


def _bot_problems(bot: Bot) -> list[str]:
    problems = [
        problem
        for problem in (
            _text_problem(bot.greeting, "greeting", _TEXT_MAX, may_be_empty=True),
            _text_problem(bot.invalid_reply, "invalid_reply", _TEXT_MAX),
            _text_problem(bot.timeout_reply, "timeout_reply", _TEXT_MAX, may_be_empty=True),
        )
        if problem is not None
    ]
    if not 0 <= bot.timeout_s <= _TIMEOUT_MAX:
        problems.append(f"timeout_s must be 0 (never) to {_TIMEOUT_MAX}, got {bot.timeout_s}")
    if not 1 <= bot.max_invalid <= _MAX_INVALID_MAX:
        problems.append(f"max_invalid must be 1 to {_MAX_INVALID_MAX}, got {bot.max_invalid}")
    return problems


def _raise(where: str, problems: list[str]) -> None:
    if problems:
        raise ValueError("; ".join(f"{where}: {problem}" for problem in problems))


class MenuOption(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One line of a menu: what the customer types (``key``), what they read (``label``) and what happens."""

    key: str
    label: str
    queue_id: int | None = None  # choosing routes the ticket to this queue
    reply: str | None = None  # sent when chosen; alone, the option only informs and the menu is shown again
    menu: Menu | None = None  # a nested menu

    def __post_init__(self) -> None:
        _raise(f"option {self.key}", _option_problems(self))


class Menu(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A prompt followed by its numbered options."""

    prompt: str
    options: list[MenuOption]

    def __post_init__(self) -> None:
        problems = _menu_problems(self)
        if _height(self) > MAX_DEPTH:
            problems.append(f"menus nest at most {MAX_DEPTH} levels deep")
        _raise("menu", problems)


class Bot(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A connection's chatbot: the greeting, the menu tree and what happens on silence or nonsense."""

    menu: Menu
    greeting: str = ""  # sent once when a conversation starts, before the menu; may be empty
    invalid_reply: str = "Não entendi. Responda com o número de uma das opções."
    timeout_s: int = 900  # 0 = never
    timeout_reply: str = ""
    fallback_queue_id: int | None = None  # after a timeout or too many invalid answers; None = any agent
    max_invalid: int = 3

    def __post_init__(self) -> None:
        _raise("bot", _bot_problems(self))


def _menu_where(path: tuple[str, ...]) -> str:
    return "menu" if not path else f"menu of option {' > '.join(path)}"


def _tree_problems(menu: Menu, path: tuple[str, ...], queue_ids: Collection[int]) -> list[str]:
    """Problems of ``menu`` (at ``path``) and everything below it, in the order the options are shown."""
    problems = [f"{_menu_where(path)}: {problem}" for problem in _menu_problems(menu)]
    if len(path) >= MAX_DEPTH:
        return [*problems, f"{_menu_where(path)}: menus nest at most {MAX_DEPTH} levels deep"]
    for option in menu.options:
        inner = (*path, option.key)
        where = f"option {' > '.join(inner)}"
        problems += [f"{where}: {problem}" for problem in _option_problems(option)]
        if option.queue_id is not None and option.queue_id not in queue_ids:
            problems.append(f"{where}: unknown queue {option.queue_id}")
        if option.menu is not None:
            problems += _tree_problems(option.menu, inner, queue_ids)
    return problems


def validate_bot(bot: Bot, queue_ids: Collection[int]) -> None:
    """Raise ``ValueError`` naming every problem by its path, including queues not in ``queue_ids``."""
    problems = [f"bot: {problem}" for problem in _bot_problems(bot)]
    if bot.fallback_queue_id is not None and bot.fallback_queue_id not in queue_ids:
        problems.append(f"fallback_queue_id: unknown queue {bot.fallback_queue_id}")
    problems += _tree_problems(bot.menu, (), queue_ids)
    if problems:
        raise ValueError("; ".join(problems))


def auto_bot(
    queues: Sequence[tuple[int, str]], *, prompt: str = "Olá! Escolha um departamento:", greeting: str = ""
) -> Bot | None:
    """The menu generated from a connection's linked ``(queue_id, name)`` pairs, or None for fewer than two."""
    if len(queues) < 2:
        return None
    options = [MenuOption(key=str(n), label=name, queue_id=queue_id) for n, (queue_id, name) in enumerate(queues, 1)]
    return Bot(greeting=greeting, menu=Menu(prompt=prompt, options=options))


def _menu_at(bot: Bot, path: Sequence[str]) -> Menu:
    menu = bot.menu
    for depth, key in enumerate(path):
        option = next((o for o in menu.options if o.key == key), None)
        if option is None or option.menu is None:
            raise ValueError(f"no menu at path {' > '.join(path[: depth + 1])!r}")
        menu = option.menu
    return menu


def prompt_text(bot: Bot, path: Sequence[str]) -> str:
    """The menu at ``path`` as one message: its prompt, one ``<key> - <label>`` line per option, then back."""
    menu = _menu_at(bot, path)
    lines = [menu.prompt, *(f"{o.key} - {o.label}" for o in menu.options)]
    if path:
        lines.append(_BACK)
    return "\n".join(lines)


def start(bot: Bot) -> list[str]:
    """The messages that open a conversation: the greeting if any, then the root menu."""
    return [*([bot.greeting] if bot.greeting.strip() else []), prompt_text(bot, [])]


@dataclass(frozen=True, slots=True)
class MenuStep:
    """What one customer answer did, the conversation's state after it and the texts to send now, in order."""

    action: StepAction
    path: tuple[str, ...]
    invalid_count: int
    queue_id: int | None  # set for route and give_up (None on give_up = no queue)
    messages: tuple[str, ...]


def _fold(text: str) -> str:
    """Lower case, no accents or keycap marks, single spaces: how answers and labels are compared."""
    decomposed = unicodedata.normalize("NFKD", text.replace("\N{KEYCAP TEN}", "10"))
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) not in ("Mn", "Me"))
    return " ".join(bare.casefold().split())


def _by_label(menu: Menu, folded: str) -> MenuOption | None:
    matches = [o for o in menu.options if _fold(o.label) == folded]
    return matches[0] if len(matches) == 1 else None


def _choice(menu: Menu, text: str) -> MenuOption | Literal["back"] | None:
    folded = _fold(text)
    number = _ANSWER.fullmatch(folded)
    if number is not None:
        key, rest = str(int(number[1])), number[2]
        if key == "0":
            return "back" if not rest or rest == "voltar" else None
        option = next((o for o in menu.options if o.key == key), None)
        if option is not None and rest and _fold(option.label) != rest:
            return None
        return option
    option = _by_label(menu, folded)
    if option is None and folded == "voltar":
        return "back"
    return option


def _give_up(bot: Bot, path: tuple[str, ...], invalid_count: int) -> MenuStep:
    messages = (bot.timeout_reply,) if bot.timeout_reply.strip() else ()
    return MenuStep("give_up", path, invalid_count, bot.fallback_queue_id, messages)


def navigate(bot: Bot, path: Sequence[str], invalid_count: int, text: str | None) -> MenuStep:
    """One customer answer to the menu at ``path``, having already given ``invalid_count`` invalid ones."""
    if invalid_count < 0:
        raise ValueError(f"invalid_count must be >= 0, got {invalid_count}")
    here = tuple(path)
    menu = _menu_at(bot, here)
    choice = _choice(menu, text) if text is not None and text.strip() else None
    if choice == "back" and here:
        parent = here[:-1]
        return MenuStep("back", parent, 0, None, (prompt_text(bot, parent),))
    if isinstance(choice, MenuOption):
        if choice.queue_id is not None:
            return MenuStep("route", here, 0, choice.queue_id, (choice.reply,) if choice.reply is not None else ())
        if choice.menu is not None:
            inner = (*here, choice.key)
            return MenuStep("submenu", inner, 0, None, (prompt_text(bot, inner),))
        assert choice.reply is not None  # the option's shape check guarantees one of the three
        return MenuStep("reply", here, 0, None, (choice.reply, prompt_text(bot, here)))
    count = invalid_count + 1
    if count >= bot.max_invalid:
        return _give_up(bot, here, count)
    return MenuStep("invalid", here, count, None, (bot.invalid_reply, prompt_text(bot, here)))


def _utc(at: datetime, name: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def timed_out(bot: Bot, prompted_at: datetime, now: datetime) -> bool:
    """Whether the customer left the menu unanswered for ``timeout_s`` seconds or more (never when 0)."""
    elapsed = _utc(now, "now") - _utc(prompted_at, "prompted_at")
    return bot.timeout_s > 0 and elapsed >= timedelta(seconds=bot.timeout_s)


def on_timeout(bot: Bot) -> MenuStep:
    """The step when the menu timed out: give up to the fallback queue, with the timeout reply if any."""
    return _give_up(bot, (), 0)
