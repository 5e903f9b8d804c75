"""The rule-based ALFWorld teacher: short reflections written from the planner's plan and what has happened.

The teacher is privileged: it reads the expert plan (the whole remaining plan of the fast-downward planner), so it
knows where the task's object is and what is left to do. A reflection has two or three sentences and ends with the
recommendation in a fixed form, "... so the best action now is to <command>." (the first step of the plan):

1. after a wrong command (one after which the plan is no shorter), what went wrong ("Going to the drawer 2 was a
   detour: nothing there is needed for the task."), otherwise what is held and what is still to do;
2. why the next command helps ("the tomato 1 I need is in the fridge 1"), then the recommendation.

It is a pure function of :class:`TeacherState`. Each sentence kind has two or three phrasings, chosen by a stable
hash of the task, the step and the commands, so the same state and last command always give the same text.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

#: How every recommendation is phrased (the recommended command follows, then a full stop).
RECOMMENDATION = "the best action now is to"
#: Verbs of commands that change the world or the agent's place: the teacher's deliberate mistakes use these.
ACTING_VERBS: frozenset[str] = frozenset(
    {"go", "open", "close", "take", "move", "heat", "cool", "clean", "slice", "use"}
)

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
_TREATMENT = {"heat": ("heated", "Heating"), "cool": ("cooled", "Cooling"), "clean": ("cleaned", "Cleaning")}


@dataclass(frozen=True)
class Command:
    """A parsed ALFWorld command: its verb (``go``, ``take``, ``look``, ...), object and receptacle ("" if none)."""

    text: str
    verb: str
    obj: str = ""
    recep: str = ""


def parse_command(text: str) -> Command:
    """Split an ALFWorld command into verb, object and receptacle (``look``, ``inventory``: the verb alone)."""
    text = " ".join(text.split())
    for verb, pattern in _COMMAND_RES:
        match = pattern.match(text)
        if match:
            groups = match.groupdict()
            return Command(text, verb, groups.get("obj") or "", groups.get("recep") or "")
    return Command(text, text.split(" ", 1)[0] if text else "")


@dataclass(frozen=True)
class TeacherState:
    """What the teacher knows at one turn.

    Attributes:
        task: The task sentence without its final full stop ("heat some tomato and put it in countertop").
        plan: The expert plan from the current state (empty once the task is done).
        previous_plan: The plan before the last command (``None`` at the start of an episode).
        last_command: The last command played (``None`` at the start or after an invalid index).
        last_invalid: Whether the last turn was an index outside the action list.
        holding: The object the agent carries ("tomato 1"), or ``None``.
        won: Whether the task is done.
        step: Turns played in the episode.

    """

    task: str
    plan: tuple[str, ...]
    previous_plan: tuple[str, ...] | None = None
    last_command: str | None = None
    last_invalid: bool = False
    holding: str | None = None
    won: bool = False
    step: int = 0


def is_wrong(previous_plan: Sequence[str] | None, plan: Sequence[str], won: bool = False) -> bool:
    """Whether the last command was wrong: the task is not done and the plan got no shorter."""
    return not won and bool(previous_plan) and len(plan) >= len(previous_plan or ())


def mistake_actions(actions: Sequence[str], plan: Sequence[str]) -> list[int]:
    """Indices of clearly wrong acting commands: those that appear nowhere in the remaining plan.

    Waiting commands (``look``, ``inventory``, ``examine``) are left out, and so is every command of the plan (a
    step of the plan played early may be no mistake). No ALFWorld command ends an episode without success, so each
    of these is followed by a turn where the corrective reflection can say what went wrong.
    """
    planned = set(plan)
    return [
        index for index, text in enumerate(actions) if text not in planned and parse_command(text).verb in ACTING_VERBS
    ]


def _pick(templates: Sequence[str], *key: object) -> str:
    digest = zlib.crc32("\x1f".join(str(part) for part in key).encode())
    return templates[digest % len(templates)]


def _milestones(plan: Sequence[str]) -> list[Command]:
    """The plan's steps that do something to an object (not walking or opening)."""
    commands = [parse_command(step) for step in plan]
    return [c for c in commands if c.verb not in ("go", "open", "close")]


def _join(texts: Sequence[str]) -> str:
    if len(texts) <= 1:
        return "".join(texts)
    return ", ".join(texts[:-1]) + ", then " + texts[-1]


def _reason(state: TeacherState) -> str:
    """Why the plan's first step is the one to take, as a clause (no capital, no full stop)."""
    step = parse_command(state.plan[0])
    later = _milestones(state.plan)
    goal = later[0] if later else None
    key = (state.task, state.step, state.plan[0], "reason")
    held = f"the {state.holding}" if state.holding else "the object"
    if step.verb == "go":
        if goal is not None and goal.verb == "take" and goal.recep == step.recep:
            templates = (
                "the {obj} I need is in the {recep}",
                "I have to fetch the {obj} from the {recep}",
                "the {obj} is waiting in the {recep}",
            )
            return _pick(templates, *key).format(obj=goal.obj, recep=step.recep)
        if goal is not None and goal.verb in _TREATMENT and goal.recep == step.recep:
            done, doing = _TREATMENT[goal.verb]
            templates = ("the {obj} has to be {done} with the {recep}", "{doing} the {obj} needs the {recep}")
            return _pick(templates, *key).format(obj=goal.obj, recep=step.recep, done=done, doing=doing.lower())
        if goal is not None and goal.verb == "move" and goal.recep == step.recep:
            templates = ("the {obj} belongs in the {recep}", "the {obj} has to end up in the {recep}")
            return _pick(templates, *key).format(obj=goal.obj, recep=step.recep)
        if goal is not None and goal.verb == "use":
            templates = ("the {lamp} stands at the {recep}", "I must look at {obj} under the {lamp} at the {recep}")
            return _pick(templates, *key).format(lamp=goal.obj, recep=step.recep, obj=held)
        return f"the next step of the plan happens at the {step.recep}"
    if step.verb == "open":
        templates = ("the {recep} is closed", "the {recep} has to be opened first")
        return _pick(templates, *key).format(recep=step.recep)
    if step.verb == "take":
        templates = ("the {obj} is right here in the {recep}", "I am at the {recep}, where the {obj} is")
        return _pick(templates, *key).format(obj=step.obj, recep=step.recep)
    if step.verb in _TREATMENT or step.verb == "move":
        templates = ("I am at the {recep} with the {obj}", "the {obj} is in my hands next to the {recep}")
        return _pick(templates, *key).format(obj=step.obj, recep=step.recep)
    if step.verb == "use":
        templates = ("I am next to the {lamp} with {obj}", "the {lamp} is right here and I hold {obj}")
        return _pick(templates, *key).format(lamp=step.obj, obj=held)
    return "this is the next step of the plan"


def _situation(state: TeacherState) -> str:
    """What is held and what is still to do (one or two sentences)."""
    key = (state.task, state.step, state.plan[0], "situation")
    parts = []
    if state.holding:
        parts.append(_pick(("I am holding the {obj}.", "I carry the {obj}."), *key).format(obj=state.holding))
    todo = [c.text for c in _milestones(state.plan)]
    if todo:
        parts.append(_pick(("Still to do: {todo}.", "Left to do: {todo}."), *key).format(todo=_join(todo)))
    return " ".join(parts)


def _mistake(state: TeacherState) -> str:
    """What went wrong with the last command (a sentence)."""
    key = (state.task, state.step, state.last_command, "mistake")
    if state.last_invalid or state.last_command is None:
        templates = (
            "My last choice was not one of the listed actions, so nothing happened.",
            "The last choice was outside the list of actions and wasted a turn.",
        )
        return _pick(templates, *key)
    last = parse_command(state.last_command)
    if last.verb == "go":
        if any(parse_command(step).recep == last.recep for step in state.plan):
            first = _milestones(state.plan)
            before = f"{first[0].text} comes first" if first else "other steps come first"
            templates = (
                "Going to the {recep} now was premature: {before}.",
                "It was too early to go to the {recep}: {before}.",
            )
            return _pick(templates, *key).format(recep=last.recep, before=before)
        templates = (
            "Going to the {recep} was a detour: nothing there is needed for the task.",
            "The trip to the {recep} was a mistake, since nothing there helps with the task.",
            "Visiting the {recep} wasted a turn: the task needs nothing from it.",
        )
        return _pick(templates, *key).format(recep=last.recep)
    if last.verb == "take":
        templates = (
            "Taking the {obj} was a mistake: it is not what the task needs, and it has to be put down again.",
            "Picking up the {obj} was wrong, because the task does not need it and my hands must be free.",
        )
        return _pick(templates, *key).format(obj=last.obj)
    if last.verb == "move":
        templates = (
            "Putting the {obj} in the {recep} was a mistake: it does not belong there.",
            "Moving the {obj} to the {recep} was wrong; the task wants it elsewhere or not yet.",
        )
        return _pick(templates, *key).format(obj=last.obj, recep=last.recep)
    if last.verb == "open":
        templates = (
            "Opening the {recep} was unnecessary: nothing in it is needed.",
            "There was no need to open the {recep}.",
        )
        return _pick(templates, *key).format(recep=last.recep)
    if last.verb == "close":
        return _pick(("Closing the {recep} wasted a turn.", "There was no need to close the {recep}."), *key).format(
            recep=last.recep
        )
    if last.verb in _TREATMENT:
        return f"{_TREATMENT[last.verb][1]} the {last.obj} with the {last.recep} was not what the task needs now."
    if last.verb in ("look", "inventory", "examine"):
        templates = (
            "The last action, {cmd}, only looked around and did not bring the task closer.",
            "Using a turn to {cmd} did not move the task forward.",
        )
        return _pick(templates, *key).format(cmd=last.text)
    return f"The last action, {last.text}, did not bring the task closer."


def reflect(state: TeacherState) -> str:
    """Write the teacher's reflection on one turn.

    Returns:
        Two or three sentences. Unless the task is done, the last one ends with "the best action now is to
        <plan[0]>." After a wrong command (see :func:`is_wrong`) or an invalid index the reflection is corrective:
        what went wrong, then how to recover.
    """
    if state.won:
        templates = (
            "The task is done: {task}.",
            "Task complete; the goal ({task}) is reached.",
            "Done: I managed to {task}.",
        )
        return _pick(templates, state.task, state.step, "done").format(task=state.task)
    if not state.plan:
        return f"I see no way to finish the task ({state.task}) from here."
    recommendation = f"{RECOMMENDATION} {state.plan[0]}."
    reason = _reason(state)
    if state.last_invalid or is_wrong(state.previous_plan, state.plan):
        return f"{_mistake(state)} To recover: {reason}, so {recommendation}"
    situation = _situation(state)
    sentence = f"{reason[0].upper()}{reason[1:]}, so {recommendation}"
    return f"{situation} {sentence}" if situation else sentence
