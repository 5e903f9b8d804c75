"""The rule-based ALFWorld teacher's reflections, written from what the agent has seen.

The command comes from the searching teacher (:func:`environments.alfworld.search.choose`); the text states only
facts of the agent's :class:`~environments.alfworld.memory.Memory` (what the engine has shown in this episode), the
task sentence and general knowledge (which receptacle classes can hold an object type). It never says where an
object is before the agent has seen it there. A reflection has one or two sentences and ends with the recommended
command, verbatim as the action list shows it: ``Next: open fridge 1.`` (:data:`RECOMMENDATION`).

After a deliberate mistake (a command of the previous turn's ``mistake_actions``) or an invalid index the reflection
is corrective: what went wrong, then ``To recover:`` and the way on. It is a pure function of :class:`TeacherState`;
phrasings are chosen by a stable hash of the task, the step and the command, so the same state gives the same text.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from environments.alfworld import catalog
from environments.alfworld.commands import parse_command
from environments.alfworld.memory import Memory, kind_of
from environments.alfworld.search import TREATMENT, Goal, Move, catalog_class, class_of, likely_classes

#: How every recommendation starts (the command follows verbatim, then a full stop).
RECOMMENDATION = "Next:"
_DONE = {"heat": ("heated", "Heating"), "cool": ("cooled", "Cooling"), "clean": ("cleaned", "Cleaning")}


@dataclass(frozen=True)
class TeacherState:
    """What the teacher knows at one turn.

    Attributes:
        task: The task sentence without its final full stop ("heat some tomato and put it in countertop").
        goal: The task's object and goal classes.
        memory: What the agent has seen (the teacher must not change it).
        move: The searching teacher's command (``None`` once the task is done or when there is no way on).
        last_command: The last command played (``None`` at the start or after an invalid index).
        last_invalid: Whether the last turn was an index outside the action list.
        last_mistake: Whether the last command was one of the previous turn's ``mistake_actions``.
        won: Whether the task is done.
        step: Turns played in the episode.

    """

    task: str
    goal: Goal
    memory: Memory
    move: Move | None
    last_command: str | None = None
    last_invalid: bool = False
    last_mistake: bool = False
    won: bool = False
    step: int = 0


def _pick(templates: Sequence[str], *key: object) -> str:
    digest = zlib.crc32("\x1f".join(str(part) for part in key).encode())
    return templates[digest % len(templates)]


def _class_text(cls: str) -> str:
    return cls.lower()


def _reason(state: TeacherState) -> str:
    """Why the command helps, as a sentence, from the agent's memory only."""
    assert state.move is not None
    memory, goal, move = state.memory, state.goal, state.move
    command = parse_command(move.command)
    key = (state.task, state.step, move.command)
    held = memory.holding
    if command.verb == "go":
        if move.kind == "search":
            kind = move.target
            found = bool(memory.seen(kind)) or (held is not None and kind_of(held) == kind)
            missing = f"I have not found another {kind} yet" if found else f"I have not seen a {kind} yet"
            cls = _class_text(class_of(command.recep))
            if class_of(command.recep) in likely_classes(catalog_class(kind, goal)):
                templates = (
                    "{missing}; a {cls} can hold one, and I have not checked the {recep}.",
                    "{missing}. The {recep} is a {cls}, where a {kind} may be, and I have not checked it.",
                )
            else:
                templates = ("{missing}, and the {recep} is the next place I have not checked.",)
            return _pick(templates, *key).format(missing=missing, kind=kind, recep=command.recep, cls=cls)
        seen_here = [o for o in memory.contents.get(command.recep, ()) if o == move.target or kind_of(o) == goal.kind]
        if held is None and seen_here:
            return f"I saw the {seen_here[0]} in the {command.recep}."
        if held is not None and kind_of(held) == goal.kind:
            lamp = [o for o in memory.contents.get(command.recep, ()) if kind_of(o) == catalog.LAMP_CLASS.lower()]
            if goal.look_at and lamp:
                return f"I hold the {held}, and I saw the {lamp[0]} in the {command.recep}."
            treatment = TREATMENT.get(goal.task_type)
            if treatment and class_of(command.recep) == catalog.APPLIANCE[goal.task_type]:
                return f"The {held} has to be {_DONE[treatment][0]} with the {command.recep}."
            if class_of(command.recep) == goal.receptacle_class:
                return f"I hold the {held}, and it belongs in the {command.recep}."
        if held is not None:
            return f"I hold the {held}, which the task does not need, and I go to the {command.recep}."
        return f"I go to the {command.recep}."
    if command.verb == "open":
        if move.kind == "search":
            return f"The {command.recep} is closed, so I open it to look inside."
        return f"The {command.recep} is closed, and I need what is inside or to put something in it."
    if command.verb == "take":
        return _pick(
            ("The {obj} is right here in the {recep}.", "I am at the {recep}, and the {obj} is here."), *key
        ).format(obj=command.obj, recep=command.recep)
    if command.verb == "move":
        if kind_of(command.obj) == goal.kind and class_of(command.recep) == goal.receptacle_class:
            return f"I am at the {command.recep} with the {command.obj}, where the task wants it."
        return f"My hands must be free: I put the {command.obj} down here."
    if command.verb in _DONE:
        return f"I am at the {command.recep} with the {command.obj}."
    if command.verb == "use":
        return f"The {command.obj} is here and I hold the {held or 'object'}."
    return "This moves the task forward."


def _mistake(state: TeacherState) -> str:
    """What went wrong with the last command (a sentence), from the agent's memory only."""
    key = (state.task, state.step, state.last_command, "mistake")
    if state.last_invalid or state.last_command is None:
        return _pick(
            (
                "My last choice was not one of the listed actions, so nothing happened.",
                "The last choice was outside the list of actions and wasted a turn.",
            ),
            *key,
        )
    last = parse_command(state.last_command)
    goal = state.goal
    if last.verb == "go":
        return _pick(
            (
                "I had already checked the {recep}, and nothing there is needed for the task.",
                "Going back to the {recep} wasted a turn: I had checked it, and it has nothing I need.",
            ),
            *key,
        ).format(recep=last.recep)
    if last.verb == "take":
        return f"Taking the {last.obj} was a mistake: the task needs a {goal.kind}, not a {kind_of(last.obj)}."
    if last.verb == "move":
        if goal.look_at:
            return f"Putting the {last.obj} down was a mistake: I must hold it under the lamp."
        return (
            f"Putting the {last.obj} in the {last.recep} was a mistake: it belongs in a "
            f"{_class_text(goal.receptacle_class)}."
        )
    if last.verb in _DONE:
        return f"{_DONE[last.verb][1]} the {last.obj} was not what the task asks for."
    if last.verb == "close":
        return f"Closing the {last.recep} wasted a turn."
    return f"The last action, {last.text}, did not bring the task closer."


def reflect(state: TeacherState) -> str:
    """Write the teacher's reflection on one turn.

    Returns:
        One or two sentences; unless the task is done, the last is ``Next: <command>.`` with the command exactly as
        the action list shows it. After a deliberate mistake or an invalid index the reflection is corrective.
    """
    if state.won:
        templates = (
            "The task is done: {task}.",
            "Task complete; the goal ({task}) is reached.",
            "Done: I managed to {task}.",
        )
        return _pick(templates, state.task, state.step, "done").format(task=state.task)
    if state.move is None:
        return f"I see no way to finish the task ({state.task}) from here."
    recommendation = f"{RECOMMENDATION} {state.move.command}."
    reason = _reason(state)
    if state.last_invalid or state.last_mistake:
        return f"{_mistake(state)} To recover: {reason} {recommendation}"
    return f"{reason} {recommendation}"
