"""The rule-based teacher of AutoExplore: short reflections that always lead to the oracle's next command.

A reflection has one to three sentences and always ends with ``Next: <command>.``:

1. the situation: what the question asks, or -- after a wrong command -- what went wrong
   ("`cd tests` led away from the target: this folder holds tests, not the definition.");
2. why the next command helps (a name that matches the folder, the file just read, the way back up);
3. ``Next: cd src.``

It is a pure function of :class:`TeacherState` (privileged: it knows the target). Each sentence kind has at least
three phrasings, chosen by a stable hash of the task, directory, step and sentence kind, so the same state and last
action always give the same text.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from environments.auto_explore.actions import CAT, CD, ID, UP, Action
from environments.auto_explore.sandbox import RelPath, defuse_markers, display_dir, display_name

GOAL: dict[str, tuple[str, ...]] = {
    "function": (
        "The question asks which file defines the function `{s}`.",
        "I need the file where the function `{s}` is defined.",
        "We are looking for the definition of the function `{s}`.",
    ),
    "class": (
        "The question asks which file defines the class `{s}`.",
        "I need the file where the class `{s}` is defined.",
        "We are looking for the definition of the class `{s}`.",
    ),
    "column": (
        "The question asks for the table with a `{s}` column.",
        "I need the data file whose header has the column `{s}`.",
        "We are looking for a CSV/TSV file with a `{s}` column.",
    ),
    "heading": (
        'The question asks for the document with the section "{s}".',
        'I need the document that has a "{s}" heading.',
        'We are looking for a document with a section called "{s}".',
    ),
    "custom": (
        "The question asks: {q}",
        "I need the file that answers: {q}",
        "The task: {q}",
    ),
}

#: What the answer file does, per kind (completes "a file that ...").
ROLE: dict[str, str] = {
    "function": "defines `{s}`",
    "class": "defines the class `{s}`",
    "column": "has the column `{s}`",
    "heading": 'has the section "{s}"',
    "custom": "answers the question",
}
#: What the agent is after, per kind (completes "..., not the ...").
WANTED: dict[str, str] = {
    "function": "the definition",
    "class": "the definition",
    "column": "the table",
    "heading": "the document",
    "custom": "the answer",
}

DOWN_MATCH = (
    "The name `{s}` suggests `{d}/`.",
    "`{d}/` matches the name `{s}`, so the answer is likely there.",
    "`{s}` points to the folder `{d}/`.",
)
DOWN_ROLE = (
    "`{d}/` holds {what}, so go into it.",
    "{What} lives in `{d}/`, which is on the way.",
    "The way to the answer goes through `{d}/`, where the {what} is.",
)
DOWN_PLAIN = (
    "The answer lies under `{d}/`.",
    "`{d}/` is the folder on the way to the answer.",
    "The path to the answer continues through `{d}/`.",
)
IDENTIFY_SEEN = (
    "`cat {f}` was the right file to read: it {role}.",
    "`{f}`, just read, is the file that {role}.",
    "The file just read, `{f}`, is the one that {role}.",
)
IDENTIFY_HERE = (
    "`{f}` in this folder is the file that {role}.",
    "Here, `{f}` is the file that {role}.",
    "Among these files, `{f}` {role}.",
)
UP_PLAIN = (
    "The answer is not below `{c}`, so go back up.",
    "Nothing under `{c}` answers the question; go up a level.",
    "`{c}` is off the path to the answer, so return to the parent folder.",
)

WRONG_CD = (
    "`cd {d}` led away from the target: {why}.",
    "Going into `{d}/` was a detour: {why}.",
    "`{d}/` is the wrong folder: {why}.",
)
WRONG_UP = (
    "`cd ..` went back up too far: the answer is below `{p}`.",
    "Leaving `{p}` with `cd ..` was a mistake; the answer is under it.",
    "`cd ..` moved away from the answer, which is inside `{p}`.",
)
WRONG_CAT = (
    "`cat {f}` shows a file that is not the one that {role}.",
    "Reading `{f}` did not help: it is not the file that {role}.",
    "`{f}` is not the answer; it is not the file that {role}.",
)
INVALID = (
    "The last choice was not one of the listed actions and wasted a turn.",
    "That index was not an admissible action, so nothing happened.",
    "The previous action was invalid and cost a turn.",
)
FINISHED = (
    "The episode is over.",
    "Nothing is left to do: the episode has ended.",
    "The task is finished.",
)

#: Folder names with a known purpose -> (description, kinds it is a good place for).
FOLDER_PURPOSES: dict[str, tuple[str, tuple[str, ...]]] = {}
for _names, _description, _kinds in (
    (("tests", "test", "testing", "unittests"), "tests", ()),
    (("docs", "doc", "documentation"), "documentation", ("heading",)),
    (("examples", "example", "demos", "tutorials"), "examples", ()),
    (("data", "datasets", "dataset", "mpl-data", "sample_data"), "data files", ("column",)),
    (("scripts", "tools", "bin", "benchmarks"), "scripts", ()),
    (("src", "lib", "core", "source"), "the source code", ("function", "class")),
    (("utils", "util", "utilities", "helpers"), "helper code", ("function", "class")),
):
    for _name in _names:
        FOLDER_PURPOSES[_name] = (_description, _kinds)


@dataclass(frozen=True)
class TeacherState:
    """What the teacher knows about one turn.

    Attributes:
        task_id: The task (part of the phrasing hash).
        kind: The question kind (``function``, ``class``, ``column``, ``heading`` or ``custom``).
        subject: The name asked about.
        question: The question text.
        cwd: The current directory.
        target: The target file the oracle heads for.
        next_action: The oracle's next command.
        step: Turns taken so far.
        last_action: The previous command, ``None`` at the start or after an invalid index.
        last_invalid: Whether the previous turn was an invalid index.
        last_was_oracle: Whether the previous command was the oracle's command at that time.
        previous_cwd: The directory before the previous command.
        done: Whether the episode is over.

    """

    task_id: str
    kind: str
    subject: str
    question: str
    cwd: RelPath
    target: RelPath
    next_action: Action
    step: int = 0
    last_action: Action | None = None
    last_invalid: bool = False
    last_was_oracle: bool = True
    previous_cwd: RelPath = ()
    done: bool = False


def pick(options: Sequence[str], *key: object) -> str:
    """Choose one phrasing deterministically from a stable hash of ``key`` (not Python's salted ``hash``)."""
    digest = zlib.crc32("\x1f".join(str(part) for part in key).encode("utf-8", errors="replace"))
    return options[digest % len(options)]


def name_tokens(name: str) -> set[str]:
    """Split an identifier or file name into lower-case words (``make_env`` -> {make, env}; ``RecordVideo`` too)."""
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)
    return {word.lower() for word in words if len(word) >= 3}


def words_match(a: str, b: str) -> bool:
    """Return whether two words of :func:`name_tokens` match: equal, or one a prefix of the other (env, envs)."""
    return a == b or (min(len(a), len(b)) >= 3 and (a.startswith(b) or b.startswith(a)))


def names_match(subject: str, name: str) -> bool:
    """Return whether an identifier and a file or folder name share a word (``env`` matches ``envs``)."""
    stem = name.rsplit(".", 1)[0] if "." in name[1:] else name
    return any(words_match(a, b) for a in name_tokens(subject) for b in name_tokens(stem))


def folder_reason(name: str, kind: str) -> str:
    """Say why folder ``name`` does not hold the answer (used after a wrong ``cd``)."""
    description = FOLDER_PURPOSES.get(name.lower(), ("", ()))[0]
    wanted = WANTED.get(kind, "the answer")
    if description:
        return f"this folder holds {description}, not {wanted}"
    return f"{wanted} is not inside it"


def _fill(template: str, state: TeacherState, **extra: str) -> str:
    # names (d, f) come shown with display_name; the subject and question come from file contents and task files
    subject = defuse_markers(state.subject)
    values = {
        "s": subject,
        "q": defuse_markers(state.question),
        "c": display_dir(state.cwd),
        "role": ROLE.get(state.kind, ROLE["custom"]).format(s=subject),
    }
    values.update(extra)
    return template.format(**values)


def situation_sentence(state: TeacherState) -> str:
    """Return the first sentence: the goal, or what went wrong with the previous command."""
    key = (state.task_id, display_dir(state.cwd), state.step)
    if state.last_invalid:
        return pick(INVALID, *key, "invalid")
    last = state.last_action
    if last is not None and not state.last_was_oracle:
        if last.verb == CD and last.name == UP:
            return _fill(pick(WRONG_UP, *key, "wrong-up"), state, p=display_dir(state.previous_cwd))
        if last.verb == CD:
            why = folder_reason(last.name, state.kind)
            return _fill(pick(WRONG_CD, *key, "wrong-cd"), state, d=display_name(last.name), why=why)
        if last.verb == CAT and (state.cwd + (last.name,)) != state.target:
            return _fill(pick(WRONG_CAT, *key, "wrong-cat"), state, f=display_name(last.name))
    goal = GOAL.get(state.kind, GOAL["custom"])
    return _fill(pick(goal, *key, "goal"), state)


def reason_sentence(state: TeacherState) -> str:
    """Return the second sentence: why the next command helps ("" when the first sentence already says it)."""
    key = (state.task_id, display_dir(state.cwd), state.step)
    action = state.next_action
    last = state.last_action
    if action.verb == CD and action.name == UP:
        if last is not None and last.verb == CD and last.name != UP and not state.last_was_oracle:
            return ""  # the correction already says that this folder is wrong
        return _fill(pick(UP_PLAIN, *key, "up"), state)
    if action.verb == CD:
        folder = action.name
        shown = display_name(folder)
        if state.subject and names_match(state.subject, folder):
            return _fill(pick(DOWN_MATCH, *key, "down-match"), state, d=shown)
        description, kinds = FOLDER_PURPOSES.get(folder.lower(), ("", ()))
        if description and state.kind in kinds:
            options = DOWN_ROLE
            text = pick(options, *key, "down-role")
            return _fill(text, state, d=shown, what=description, What=description[0].upper() + description[1:])
        return _fill(pick(DOWN_PLAIN, *key, "down"), state, d=shown)
    if action.verb == ID:
        seen = last is not None and last.verb == CAT and last.name == action.name
        options = IDENTIFY_SEEN if seen else IDENTIFY_HERE
        return _fill(pick(options, *key, "identify"), state, f=display_name(action.name))
    return ""


def reflect(state: TeacherState) -> str:
    """Return the teacher's reflection for ``state``: one to three sentences ending with ``Next: <command>.``."""
    if state.done:
        return pick(FINISHED, state.task_id, state.step, "done")
    first = situation_sentence(state)
    second = reason_sentence(state)
    if second and state.last_action is not None and state.last_action.verb == CAT:
        # after reading the target itself, the goal sentence would repeat what the second one says
        if state.next_action.verb == ID and state.last_action.name == state.next_action.name:
            first = ""
    sentences = [s for s in (first, second) if s]
    command = state.next_action.text
    sentences.append(f"Next: {command}" + ("" if command.endswith(".") else "."))
    return " ".join(sentences)
