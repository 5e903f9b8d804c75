"""The searching teacher's choice of command: search like a person who does not know the room, then act as the planner.

Each turn the teacher picks one admissible command from the agent's :class:`~environments.alfworld.memory.Memory` and
the planner's plan, using the plan only where it needs nothing the agent has not seen:

1. Holding something the task does not need: the plan's first step (it puts it down).
2. The plan's next object step takes an object (``take tomato 1 from fridge 1``): if that object was seen there, the
   plan's first step; else, if another object of the type was seen (and is not already placed, for
   ``pick_two_obj_and_place``), fetch it (go there, open it if it was closed again, take it); else search for the type.
3. The plan's next object step uses the lamp: the plan if the lamp was seen where the plan goes, else fetch a seen lamp,
   else search for the lamp.
4. Anything else (heat, cool, clean, move what is held; the goal receptacle and the appliances are in the room
   description): the plan's first step.

**The search order** (:func:`search_order`): first the receptacles of the classes that can hold the object type
(ALFRED's ``canContain``, :data:`~environments.alfworld.catalog.CAN_CONTAIN`; for the desk lamp: side tables and
desks), then the rest; each group by name, then number. The teacher goes to the first one not yet checked and opens
it if it is closed.

:func:`mistake_actions` lists the commands that the agent's memory already shows to be wrong; none of them ends an
episode.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from environments.alfworld import catalog
from environments.alfworld.commands import parse_command
from environments.alfworld.memory import Memory, kind_of

#: The treatment each task type needs (``heat``, ``cool``, ``clean``), if any.
TREATMENT: dict[str, str] = {
    "pick_heat_then_place_in_recep": "heat",
    "pick_cool_then_place_in_recep": "cool",
    "pick_clean_then_place_in_recep": "clean",
}
_CLASSES = {cls.lower(): cls for cls in (*catalog.CAN_CONTAIN, catalog.LAMP_CLASS)}
_NUMBER_RE = re.compile(r"^(.*) (\d+)$")


@dataclass(frozen=True)
class Goal:
    """What the task asks for, as the task sentence says it.

    Attributes:
        task_type: The ALFWorld task type.
        object_class: The ALFRED class of the task's object (``Tomato``).
        receptacle_class: Where it must end up (``CounterTop``); for ``look_at_obj_in_light`` the lamp's class.

    """

    task_type: str
    object_class: str
    receptacle_class: str

    @property
    def kind(self) -> str:
        """The object type as the engine names it (``tomato``)."""
        return self.object_class.lower()

    @property
    def look_at(self) -> bool:
        """Whether the task is to look at the object under a lamp."""
        return self.task_type == "look_at_obj_in_light"


@dataclass(frozen=True)
class Move:
    """The teacher's command and why: ``kind`` is ``search``, ``fetch`` or ``plan``; ``target`` the object sought."""

    command: str
    kind: str
    target: str = ""


def class_of(receptacle: str) -> str:
    """The ALFRED class of a receptacle name (``"countertop 2"`` -> ``"CounterTop"``; unknown: the name's type)."""
    kind = kind_of(receptacle)
    return _CLASSES.get(kind, kind)


def likely_classes(object_class: str) -> frozenset[str]:
    """The receptacle classes searched first for an object class."""
    if object_class == catalog.LAMP_CLASS:
        return frozenset(catalog.LAMP_RECEPTACLES)
    return frozenset(r for r, objects in catalog.CAN_CONTAIN.items() if object_class in objects)


def search_order(receptacles: Sequence[str], object_class: str) -> list[str]:
    """The receptacles in the order the teacher searches them for ``object_class`` (see the module docstring)."""
    likely = likely_classes(object_class)

    def key(name: str) -> tuple[int, str, int]:
        match = _NUMBER_RE.match(name)
        base, number = (match.group(1), int(match.group(2))) if match else (name, 0)
        return (0 if class_of(name) in likely else 1, base, number)

    return sorted(receptacles, key=key)


def _fetch(obj: str, recep: str, memory: Memory, actions: Sequence[str], kind: str) -> Move:
    take = f"take {obj} from {recep}"
    if take in actions:
        return Move(take, kind, obj)
    if memory.location == recep and f"open {recep}" in actions:
        return Move(f"open {recep}", kind, obj)
    return Move(f"go to {recep}", kind, obj)


def _search(object_class: str, memory: Memory, actions: Sequence[str]) -> Move | None:
    for recep in search_order(memory.receptacles, object_class):
        if memory.checked(recep):
            continue
        if memory.location == recep:
            if f"open {recep}" in actions:
                return Move(f"open {recep}", "search", object_class.lower())
            continue
        if f"go to {recep}" in actions:
            return Move(f"go to {recep}", "search", object_class.lower())
    return None


def _available(goal: Goal, memory: Memory, kind: str) -> list[tuple[str, str]]:
    """Seen objects of ``kind`` that may be fetched (for two objects: not those already in a goal receptacle)."""
    seen = memory.seen(kind)
    if goal.task_type == "pick_two_obj_and_place":
        seen = [(obj, recep) for obj, recep in seen if class_of(recep) != goal.receptacle_class]
    return seen


def choose(goal: Goal, memory: Memory, plan: Sequence[str], actions: Sequence[str]) -> Move:
    """The searching teacher's command for this turn (see the module docstring); ``plan`` must not be empty."""
    first = Move(plan[0], "plan")
    if memory.holding is not None and kind_of(memory.holding) != goal.kind:
        return first
    step = next((parse_command(s) for s in plan if parse_command(s).verb not in ("go", "open", "close")), None)
    if step is None or step.verb not in ("take", "use"):
        return first
    if step.verb == "take":
        kind, object_class = kind_of(step.obj), catalog_class(step.obj, goal)
        if memory.where(step.obj) == step.recep:
            return first
    else:  # the lamp: was it seen where the plan goes to use it?
        kind, object_class = kind_of(step.obj), catalog.LAMP_CLASS
        going = next((parse_command(s).recep for s in plan if parse_command(s).verb == "go"), memory.location)
        if memory.where(step.obj) == going:
            return first
    available = _available(goal, memory, kind)
    if available:
        obj, recep = available[0]
        if step.verb == "use":
            use = f"use {obj}"
            here = memory.location == recep and use in actions
            return Move(use if here else f"go to {recep}", "fetch", obj)
        return _fetch(obj, recep, memory, actions, "fetch")
    return _search(object_class, memory, actions) or first


def catalog_class(obj: str, goal: Goal) -> str:
    """The ALFRED class of an object name (the task's class when the type matches)."""
    kind = kind_of(obj)
    if kind == goal.kind:
        return goal.object_class
    return next((cls for cls in (*catalog.OBJECT_CLASSES, catalog.LAMP_CLASS) if cls.lower() == kind), kind)


def mistake_actions(goal: Goal, memory: Memory, actions: Sequence[str], teacher: str) -> list[int]:
    """Indices of commands the agent's memory already shows to be wrong (never the teacher's ``teacher`` command).

    * going to a checked receptacle that holds nothing the task needs and is not of a class the task needs;
    * taking an object of another type than the task's;
    * putting the task's object in a receptacle of another class than the goal's (for look-at tasks: anywhere);
    * a treatment the task does not ask for; closing a receptacle.
    """
    needed = {goal.receptacle_class, catalog.APPLIANCE.get(goal.task_type, "")}
    useful = {goal.kind, catalog.LAMP_CLASS.lower() if goal.look_at else goal.kind}
    wrong = []
    for index, text in enumerate(actions):
        if text == teacher:
            continue
        command = parse_command(text)
        if command.verb == "go":
            items = memory.contents.get(command.recep)
            bad = items is not None and not any(kind_of(o) in useful for o in items)
            bad = bad and class_of(command.recep) not in needed
        elif command.verb == "take":
            bad = kind_of(command.obj) != goal.kind
        elif command.verb == "move":
            bad = kind_of(command.obj) == goal.kind and (
                goal.look_at or class_of(command.recep) != goal.receptacle_class
            )
        elif command.verb in ("heat", "cool", "clean"):
            bad = command.verb != TREATMENT.get(goal.task_type)
        else:
            bad = command.verb == "close"
        if bad:
            wrong.append(index)
    return wrong
