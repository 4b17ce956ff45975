"""Quick-reply templates with variables: ``Olá {{contact.first_name}}, aqui é {{ agent.name }}.``

Pure functions. Decisions, stated once so every function agrees:

* **Syntax.** A variable is ``{{ name }}`` with optional whitespace inside the braces; a name is lowercase words
  joined by dots (``[a-z_]+(\\.[a-z_]+)*``). Anything else between ``{{`` and ``}}`` (``{{ Contact.Name }}``,
  ``{{}}``) is malformed, and a ``{{`` with no ``}}`` before the next ``{{`` is unclosed: ``check_template`` rejects
  both, ``render`` leaves them as text. A stray single brace is plain text, so ``{{{contact.name}}}`` renders the
  name between single braces.
* **Rendering** is a single pass: a value is inserted as is and never expanded again, so a customer named
  ``{{agent.name}}`` stays that. There is no escaping; these are WhatsApp texts, not HTML.
* **Empty values.** A missing, None or empty value renders as nothing and takes one space with it, so no gap is
  left behind: ``Olá {{contact.name}} tudo bem`` -> ``Olá tudo bem``, ``Obrigado {{contact.name}}!`` ->
  ``Obrigado!``, ``{{greeting}} João`` -> ``João``. Text around filled variables is never touched.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import time

__all__ = ["VARIABLES", "check_template", "first_name", "greeting_for", "render", "template_variables"]

VARIABLES: frozenset[str] = frozenset(
    {
        "contact.name",
        "contact.first_name",
        "contact.phone",
        "agent.name",
        "agent.first_name",
        "ticket.number",
        "queue.name",
        "connection.name",
        "greeting",
    }
)
"""The variables the inbox fills in; ``check_template`` accepts only these unless told otherwise."""

_VARIABLE = re.compile(r"\{\{\s*([a-z_]+(?:\.[a-z_]+)*)\s*\}\}")
# In the text between variables: a "{{...}}" that is no variable, or a "{{" that never closes.
_BROKEN = re.compile(r"\{\{(?:(?!\{\{).)*?\}\}|\{\{", re.DOTALL)
_PUNCTUATION = frozenset(",.;:!?")
_MORNING, _AFTERNOON, _EVENING = time(5), time(12), time(18)


def template_variables(template: str) -> frozenset[str]:
    """The names of the variables used in ``template``."""
    return frozenset(match[1] for match in _VARIABLE.finditer(template))


def check_template(template: str, allowed: Collection[str] = VARIABLES) -> None:
    """Raise ``ValueError`` naming every unknown variable (sorted), malformed variable and unclosed ``{{``."""
    problems: list[str] = []
    unknown = sorted(template_variables(template) - set(allowed))
    if unknown:
        problems.append(f"unknown variable{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    pos = 0
    gaps: list[tuple[int, str]] = []
    for match in _VARIABLE.finditer(template):
        gaps.append((pos, template[pos : match.start()]))
        pos = match.end()
    gaps.append((pos, template[pos:]))
    for offset, gap in gaps:
        for broken in _BROKEN.finditer(gap):
            if broken[0] == "{{":
                problems.append(f"unclosed '{{{{' at character {offset + broken.start()}")
            else:
                problems.append(
                    f"malformed variable {broken[0]!r}: names are lowercase words joined by dots, "
                    "like {{contact.name}}"
                )
    if problems:
        raise ValueError("; ".join(problems))


def render(template: str, values: Mapping[str, str | None]) -> str:
    """``template`` with every variable replaced by its value; a missing or None value renders as nothing."""
    result = ""
    protected = 0  # result[:protected] ends with a value: content, never taken for a space to collapse
    pos = 0
    for match in _VARIABLE.finditer(template):
        result += template[pos : match.start()]
        pos = match.end()
        value = values.get(match[1]) or ""
        if value:
            result += value
            protected = len(result)
            continue
        before = result[-1] if len(result) > protected else ("" if not result else "x")
        after = template[pos : pos + 1]
        if after == " " and before in ("", " ", "\n"):
            pos += 1  # "a {{x}} b" -> "a b"; "{{x}} b" -> "b"
        elif before == " " and (after in ("", "\n") or after in _PUNCTUATION):
            result = result[:-1]  # "a {{x}}!" -> "a!"; "a {{x}}" -> "a"
    return result + template[pos:]


def first_name(name: str | None) -> str:
    """The first word of a name (``""`` for None or blank)."""
    words = name.split() if name else []
    return words[0] if words else ""


def greeting_for(local_time: time) -> str:
    """``Bom dia`` from 05:00, ``Boa tarde`` from 12:00, ``Boa noite`` from 18:00 until 04:59 (wall clock)."""
    wall = local_time.replace(tzinfo=None)
    if _MORNING <= wall < _AFTERNOON:
        return "Bom dia"
    if _AFTERNOON <= wall < _EVENING:
        return "Boa tarde"
    return "Boa noite"
