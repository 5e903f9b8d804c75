"""ALFWorld's commands, parsed: ``take tomato 1 from fridge 1`` -> verb ``take``, object ``tomato 1``, receptacle."""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMMAND_RES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("go", re.compile(r"^go to (?P<recep>.+)$")),
    ("take", re.compile(r"^take (?P<obj>.+) from (?P<recep>.+)$")),
    ("move", re.compile(r"^move (?P<obj>.+) to (?P<recep>.+)$")),
    ("heat", re.compile(r"^heat (?P<obj>.+) with (?P<recep>.+)$")),
    ("cool", re.compile(r"^cool (?P<obj>.+) with (?P<recep>.+)$")),
    ("clean", re.compile(r"^clean (?P<obj>.+) with (?P<recep>.+)$")),
    ("slice", re.compile(r"^slice (?P<obj>.+) with (?P<recep>.+)$")),
    ("open", re.compile(r"^open (?P<recep>.+)$")),
    ("close", re.compile(r"^close (?P<recep>.+)$")),
    ("use", re.compile(r"^use (?P<obj>.+)$")),
    ("examine", re.compile(r"^examine (?P<obj>.+)$")),
)


@dataclass(frozen=True)
class Command:
    """A parsed ALFWorld command: its verb (``go``, ``take``, ``look``, ...), object and receptacle ("" if none)."""

    text: str
    verb: str
    obj: str = ""
    recep: str = ""


def parse_command(text: str) -> Command:
    """Split an ALFWorld command into verb, object and receptacle (``look``, ``inventory``: the verb alone).

    Example:
        >>> parse_command("heat mug 2 with microwave 1")
        Command(text='heat mug 2 with microwave 1', verb='heat', obj='mug 2', recep='microwave 1')
    """
    text = " ".join(text.split())
    for verb, pattern in _COMMAND_RES:
        match = pattern.match(text)
        if match:
            groups = match.groupdict()
            return Command(text, verb, groups.get("obj") or "", groups.get("recep") or "")
    return Command(text, text.split(" ", 1)[0] if text else "")
