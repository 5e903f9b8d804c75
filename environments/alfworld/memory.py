"""What the agent has seen in one ALFWorld episode, read from the engine's answers alone (nothing privileged).

:class:`Memory` reads the room description and every answer of the engine ("You arrive at fridge 1. The fridge 1 is
closed.", "You open the fridge 1. The fridge 1 is open. In it, you see a egg 2, and a tomato 1.", "You pick up the
tomato 1 from the fridge 1.") and keeps the receptacles of the room, the ones whose contents were seen (most recent
first) with what was seen in them, the ones seen closed, where the agent is and what it holds. Both the observation's
memory lines and the searching teacher (:mod:`environments.alfworld.search`) are written from it, so the teacher
knows only what the agent has been shown.

Example:
    >>> memory = Memory.from_room("Looking quickly around you, you see a fridge 1, and a countertop 1.")
    >>> memory.observe("You arrive at fridge 1. The fridge 1 is closed.")
    >>> memory.observe("You open the fridge 1. The fridge 1 is open. In it, you see a egg 2, and a tomato 1.")
    >>> memory.contents["fridge 1"], memory.location
    (('egg 2', 'tomato 1'), 'fridge 1')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = r"[a-z]+ \d+"
_ROOM_RE = re.compile(r"you see (.*?)\.\s*$", re.MULTILINE)
_ARRIVE_RE = re.compile(rf"You arrive at (?:loc \d+|(?P<recep>{_NAME}))\.")
_OPEN_RE = re.compile(rf"You open the (?P<recep>{_NAME})\.")
_CLOSE_RE = re.compile(rf"You close the (?P<recep>{_NAME})\.")
_CLOSED_RE = re.compile(rf"The (?P<recep>{_NAME}) is closed\.")
_CONTENTS_RE = re.compile(rf"(?:(?:On|In) the (?P<recep>{_NAME})|In it), you see (?P<items>[^.]*)\.")
_TAKE_RE = re.compile(rf"You pick up the (?P<obj>{_NAME}) from the (?P<recep>{_NAME})\.")
_MOVE_RE = re.compile(rf"You move the (?P<obj>{_NAME}) to the (?P<recep>{_NAME})\.")


def name_list(text: str) -> tuple[str, ...]:
    """The names of an engine listing ("a cd 1, and a dishsponge 2" -> ``("cd 1", "dishsponge 2")``)."""
    return tuple(re.findall(rf"\b(?:a|an) ({_NAME})\b", text))


def kind_of(name: str) -> str:
    """The type of a named thing: ``"tomato 1"`` -> ``"tomato"``."""
    return name.rsplit(" ", 1)[0]


@dataclass
class Memory:
    """The agent's knowledge of the room (see the module docstring).

    Attributes:
        receptacles: The room's receptacles, as the room description lists them.
        contents: Receptacle -> the objects last seen in it, the most recently seen receptacle first.
        closed: Receptacles seen closed and not opened since.
        location: The receptacle the agent is at (``None``: the middle of the room).
        holding: The object the agent carries, or ``None``.

    """

    receptacles: tuple[str, ...] = ()
    contents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    location: str | None = None
    holding: str | None = None

    @classmethod
    def from_room(cls, room: str) -> Memory:
        """A memory that knows the receptacles of the room description and nothing else."""
        match = _ROOM_RE.search(room)
        return cls(receptacles=name_list(match.group(1)) if match else ())

    def checked(self, receptacle: str) -> bool:
        """Whether the contents of ``receptacle`` have been seen."""
        return receptacle in self.contents

    def where(self, obj: str) -> str | None:
        """The receptacle ``obj`` was last seen in (``None``: never seen, or held)."""
        for receptacle, items in self.contents.items():
            if obj in items:
                return receptacle
        return None

    def seen(self, kind: str) -> list[tuple[str, str]]:
        """``(object, receptacle)`` of every object of type ``kind`` seen and not held, most recently seen first."""
        return [(obj, recep) for recep, items in self.contents.items() for obj in items if kind_of(obj) == kind]

    def observe(self, feedback: str) -> None:
        """Update from one answer of the engine."""
        arrive = _ARRIVE_RE.search(feedback)
        if arrive:
            self.location = arrive.group("recep")
        opened = _OPEN_RE.search(feedback)
        if opened:
            self.closed.discard(opened.group("recep"))
        closed = _CLOSE_RE.search(feedback) or _CLOSED_RE.search(feedback)
        if closed:
            self.closed.add(closed.group("recep"))
        listing = _CONTENTS_RE.search(feedback)
        if listing:
            receptacle = listing.group("recep") or self.location
            if receptacle is not None:
                self._set_contents(receptacle, name_list(listing.group("items")))
        take = _TAKE_RE.search(feedback)
        if take:
            self.holding = take.group("obj")
            recep = take.group("recep")
            self._set_contents(recep, tuple(o for o in self.contents.get(recep, ()) if o != self.holding))
        move = _MOVE_RE.search(feedback)
        if move:
            self.holding = None
            recep = move.group("recep")
            self._set_contents(recep, (*self.contents.get(recep, ()), move.group("obj")))

    def _set_contents(self, receptacle: str, items: tuple[str, ...]) -> None:
        self.contents.pop(receptacle, None)
        self.contents = {receptacle: items, **self.contents}  # the most recent first

    def lines(self, max_receptacles: int) -> list[str]:
        """The memory as the observation shows it: what is held, the checked receptacles and those not yet checked.

        At most ``max_receptacles`` checked receptacles (the most recent first) and as many unchecked ones (in the
        room's order) are named; ``and N more`` counts the rest.
        """

        def bounded(names: list[str]) -> str:
            more = f", and {len(names) - max_receptacles} more" if len(names) > max_receptacles else ""
            return ", ".join(names[:max_receptacles]) + more

        checked = [f"{recep} ({', '.join(items) or 'nothing'})" for recep, items in self.contents.items()]
        unchecked = [recep for recep in self.receptacles if recep not in self.contents]
        lines = [f"Holding: {self.holding or 'nothing'}."]
        if checked:
            lines.append(f"Checked: {bounded(checked)}.")
        if unchecked:
            lines.append(f"Not checked: {bounded(unchecked)}.")
        return lines
