"""The teacher of AutoExplore v1: a search that uses only what the agent has been shown, and says why.

Unlike the v0 teacher (:mod:`environments.auto_explore.teacher`), it does not know the target. It knows what the
episode's observations showed: the question, the listing of every folder entered, and what ``cat`` showed of every
file read (:class:`Knowledge`). Its strategy:

1. **Answer only after the evidence was shown.** When a file read in this episode showed the answer (the ``def`` or
   ``class`` in its outline, the column in its header, the heading in its heading list), go to it and ``id`` it.
2. **Otherwise read or enter the best unexplored candidate.** Candidates are the folders listed but not entered and
   the files listed but not read whose type can show the answer (Python files for ``def``/``class`` questions,
   CSV/TSV for columns, Markdown/reST for headings, any file for other questions). They are ranked by
   :func:`candidate_score`, the number of words of the question's subject (split at ``_``, case changes and digits,
   words of 3+ letters, a word matching another when one is a prefix of the other: ``env`` ~ ``envs``) that the
   name shares, plus 0.5 for a folder whose name says it holds what the question asks about (``data/`` for
   columns, ``docs/`` for headings). A file whose name shares no word comes after every unexplored folder: entering
   a folder shows a listing of new names, reading such a file only one file's items (:data:`UNMATCHED_FILES_LAST`).
   Ties go to the nearest candidate (fewest commands away), then folders before files, then by name. When no name
   matches, this is a fixed depth-first order: the nearest unexplored folder (the first listed), down to the bottom
   and back up, every folder once; then the unmatched files, nearest first.
3. **Go back up on a miss**: a candidate outside the current folder is reached through ``cd ..`` and folders
   already entered.

Every fact a reflection states is in the current or an earlier observation of the episode: the subject (quoted
from the question), names from the listings, items from the file views, the folders and files already explored. The
shortest-path oracle is not used here; it stays for ``info["oracle_action"]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from environments.auto_explore.actions import CAT, CD, ID, UP, Action
from environments.auto_explore.file_view import (
    DOCUMENT_EXTENSIONS,
    PYTHON_EXTENSIONS,
    TABLE_DELIMITERS,
    FileView,
    shows_evidence,
)
from environments.auto_explore.sandbox import RelPath, defuse_markers, display_dir, display_name
from environments.auto_explore.teacher import FINISHED, FOLDER_PURPOSES, GOAL, INVALID, name_tokens, pick, words_match

#: File extensions whose view can show the answer, per question kind (``None``: any file).
KIND_EXTENSIONS: dict[str, tuple[str, ...] | None] = {
    "function": PYTHON_EXTENSIONS,
    "class": PYTHON_EXTENSIONS,
    "column": tuple(TABLE_DELIMITERS),
    "heading": DOCUMENT_EXTENSIONS,
    "custom": None,
}
#: What the answer looks like in a file view, per kind ("shows `def foo`").
EVIDENCE: dict[str, str] = {"function": "def {s}", "class": "class {s}", "column": "{s}", "heading": "{s}"}
#: Kinds for which a folder named for its purpose gets a bonus (``data/`` for columns, ``docs/`` for headings).
FOLDER_BONUS_KINDS = ("column", "heading")
#: Where files go among candidates of equal score and distance: 1, after folders (entering one shows more names).
FILE_RANK = 1
#: Whether a file whose name shares no word with the question waits until every listed folder was entered.
UNMATCHED_FILES_LAST = True
_QUESTION_STOPWORDS = frozenset(
    {"which", "what", "where", "file", "files", "find", "the", "that", "this", "with", "does", "defines", "defined"}
)


@dataclass
class Knowledge:
    """What the observations of one episode have shown so far (the teacher's only input).

    Attributes:
        listings: For every folder entered: the folder names and file names its listing showed.
        reads: For every file read: what ``cat`` showed.
        last_planned: The command this teacher recommended at the previous turn (``None`` at the start).

    The other attributes (the task: ``task_id``, ``kind``, ``subject``, ``question``; the turn: ``cwd``, ``step``,
    ``last_action``, ``last_invalid``, ``previous_cwd``, ``done``) mean what they mean in
    :class:`~environments.auto_explore.teacher.TeacherState`; ``subject`` is ``""`` for custom questions.
    """

    task_id: str
    kind: str
    subject: str
    question: str
    cwd: RelPath = ()
    listings: dict[RelPath, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    reads: dict[RelPath, FileView] = field(default_factory=dict)
    step: int = 0
    last_action: Action | None = None
    last_invalid: bool = False
    last_planned: Action | None = None
    previous_cwd: RelPath = ()
    done: bool = False


@dataclass(frozen=True)
class Plan:
    """The teacher's decision: the next command and what it heads for.

    Attributes:
        action: The next command.
        goal: The file or folder it heads for (``()`` when nothing is left to explore).
        goal_is_dir: Whether ``goal`` is a folder.
        answer: Whether ``goal`` is a file that showed the answer.
        matched: The subject's words the goal's name shares.

    """

    action: Action
    goal: RelPath = ()
    goal_is_dir: bool = False
    answer: bool = False
    matched: tuple[str, ...] = ()


def query_words(knowledge: Knowledge) -> set[str]:
    """The words a name is compared with: the subject's, or the question's (without common words) if it has none."""
    text = knowledge.subject or knowledge.question
    words = name_tokens(text)
    return words if knowledge.subject else words - _QUESTION_STOPWORDS


def shared_words(words: set[str], name: str) -> tuple[str, ...]:
    """Return the words of ``words`` that a file or folder name shares (sorted)."""
    stem = name.rsplit(".", 1)[0] if "." in name[1:] else name
    tokens = name_tokens(stem)
    return tuple(sorted(word for word in words if any(words_match(word, token) for token in tokens)))


def candidate_score(knowledge: Knowledge, name: str, is_dir: bool, words: set[str] | None = None) -> float:
    """Rank a name for the question: shared words, plus 0.5 for a folder whose name suits the kind (module doc)."""
    score = float(len(shared_words(query_words(knowledge) if words is None else words, name)))
    purpose_kinds = FOLDER_PURPOSES.get(name.lower(), ("", ()))[1]
    if is_dir and knowledge.kind in FOLDER_BONUS_KINDS and knowledge.kind in purpose_kinds:
        score += 0.5
    return score


def fits_kind(kind: str, name: str) -> bool:
    """Return whether a file's view can show the answer to a ``kind`` question."""
    extensions = KIND_EXTENSIONS.get(kind)
    return extensions is None or name.lower().endswith(extensions)


def _distance(cwd: RelPath, where: RelPath) -> int:
    common = 0
    while common < min(len(cwd), len(where)) and cwd[common] == where[common]:
        common += 1
    return len(cwd) - common + len(where) - common


def _step_towards(cwd: RelPath, folder: RelPath) -> Action | None:
    """The first command from ``cwd`` to ``folder`` (``None`` when already there)."""
    if folder[: len(cwd)] != cwd:
        return Action(CD, UP)
    if folder == cwd:
        return None
    return Action(CD, folder[len(cwd)])


def evidence_files(knowledge: Knowledge) -> list[RelPath]:
    """The files read in this episode whose view showed the answer, nearest first."""
    if knowledge.kind == "custom":
        words = query_words(knowledge)
        found = [path for path in knowledge.reads if shared_words(words, path[-1])]
    else:
        found = [
            path for path, view in knowledge.reads.items() if shows_evidence(view, knowledge.kind, knowledge.subject)
        ]
    return sorted(found, key=lambda path: (_distance(knowledge.cwd, path[:-1]), path))


def plan(knowledge: Knowledge) -> Plan:
    """Return the teacher's next command for ``knowledge`` (see the module docstring for the strategy)."""
    cwd = knowledge.cwd
    answers = evidence_files(knowledge)
    if answers:
        target = answers[0]
        step = _step_towards(cwd, target[:-1]) or Action(ID, target[-1])
        return Plan(step, target, answer=True)
    words = query_words(knowledge)
    best: tuple | None = None
    for folder, (dirs, files) in knowledge.listings.items():
        distance = _distance(cwd, folder) + 1
        for name in files:
            path = folder + (name,)
            if path in knowledge.reads or not fits_kind(knowledge.kind, name):
                continue
            score = candidate_score(knowledge, name, False, words)
            key = (-score, UNMATCHED_FILES_LAST and not score, distance, FILE_RANK, path)
            best = key if best is None or key < best else best
        for name in dirs:
            path = folder + (name,)
            if path in knowledge.listings:
                continue
            key = (-candidate_score(knowledge, name, True, words), False, distance, 1 - FILE_RANK, path)
            best = key if best is None or key < best else best
    if best is None:
        return Plan(Action(CD, UP) if cwd else _any_action(knowledge))
    path, is_dir = best[4], best[3] != FILE_RANK
    step = _step_towards(cwd, path[:-1]) or Action(CD if is_dir else CAT, path[-1])
    return Plan(step, path, goal_is_dir=is_dir, matched=shared_words(words, path[-1]))


def _any_action(knowledge: Knowledge) -> Action:
    dirs, files = knowledge.listings.get(knowledge.cwd, ((), ()))
    unread = [name for name in files if (knowledge.cwd + (name,)) not in knowledge.reads]
    if unread:
        return Action(CAT, unread[0])
    return Action(CD, dirs[0]) if dirs else Action(CAT, files[0]) if files else Action(CD, UP)


# -- phrasing ---------------------------------------------------------------------------------------------------------
READ_HIT = (
    "The view of `{f}` shows `{e}`, so `{f}` answers the question.",
    "`{f}` shows `{e}`: this is the answer.",
    "Reading `{f}` showed `{e}`, the evidence the question asks for.",
)
GO_TO_HIT = (
    "`{f}`, read before, showed `{e}`; go back to it.",
    "Earlier, `{f}` showed `{e}`, so head back there.",
    "`{f}` showed `{e}` when it was read; return to answer with it.",
)
READ_MISS = (
    "`{f}` does not show `{e}`.",
    "Reading `{f}` did not show `{e}`, so it is not the answer.",
    "No `{e}` in what `{f}` shows.",
)
READ_UNCLEAR = (
    "`{f}` does not settle the question.",
    "Reading `{f}` did not show the answer.",
    "`{f}` is not clearly the answer.",
)
DETOUR_CD = (
    "`cd {d}` was a detour: the plan was `{p}`.",
    "Entering `{d}/` left the plan, which was `{p}`.",
    "`{d}/` was not the best lead; the plan was `{p}`.",
)
DETOUR_UP = (
    "`cd ..` left `{c}` before it was explored; the plan was `{p}`.",
    "Going up from `{c}` was premature: the plan was `{p}`.",
    "`cd ..` was a detour away from `{c}`; the plan was `{p}`.",
)
DETOUR_CAT = (
    "Reading `{f}` was off the plan (`{p}`).",
    "`cat {f}` was a detour from the plan, `{p}`.",
    "`{f}` was not the next file to read; the plan was `{p}`.",
)
READ_HERE_MATCH = (
    "`{f}` shares `{w}` with the question, so read it.",
    "The name `{f}` matches `{w}`: read it next.",
    "`{f}` is the best unread match (`{w}`).",
)
READ_HERE_PLAIN = (
    "Every listed folder has been entered and no unread name matches, so read `{f}`.",
    "No folder is left to enter; read the next file, `{f}`.",
    "With every listed folder explored, read `{f}` to see what it holds.",
)
ENTER_MATCH = (
    "`{d}/` shares `{w}` with the question, so enter it.",
    "The folder `{d}/` matches `{w}`.",
    "`{d}/` is the best unexplored match (`{w}`).",
)
ENTER_ROLE = (
    "`{d}/` usually holds {what}, which fits the question.",
    "{What} usually live in `{d}/`, so look there.",
    "`{d}/` is where {what} usually are.",
)
ENTER_PLAIN = (
    "No unexplored name matches better than `{d}/`, so enter it to see more names.",
    "Next unexplored folder: `{d}/`; folders come before unmatched files.",
    "Look inside `{d}/`: its listing shows more names.",
)
HEAD_FOR = (
    "Nothing here fits better, so head for `{g}` in `{w}`.",
    "The best lead left is `{g}` in `{w}`; go that way.",
    "Go back toward `{w}`, where `{g}` is still unexplored.",
)
EXHAUSTED = (
    "Everything listed that fits the question has been explored.",
    "No unexplored candidate is left in what was listed.",
    "All listed candidates have been tried.",
)


def _evidence_text(knowledge: Knowledge) -> str:
    return defuse_markers(EVIDENCE.get(knowledge.kind, "{s}").format(s=knowledge.subject))


def _last_sentence(knowledge: Knowledge, key: tuple) -> str:
    """What the previous command showed or did: a read's result, or a detour from the plan."""
    last = knowledge.last_action
    if knowledge.last_invalid:
        return pick(INVALID, *key, "invalid")
    if last is None:
        return ""
    planned = knowledge.last_planned
    if last.verb == CAT:
        path = knowledge.previous_cwd + (last.name,)
        view = knowledge.reads.get(path)
        shown = display_name(last.name)
        if view is not None and path in evidence_files(knowledge):
            return ""  # the plan sentence says it
        if knowledge.kind != "custom" and view is not None:
            text = pick(READ_MISS, *key, "miss").format(f=shown, e=_evidence_text(knowledge))
        else:
            text = pick(READ_UNCLEAR, *key, "unclear").format(f=shown)
        if planned is not None and planned != last:
            text += " " + pick(DETOUR_CAT, *key, "detour").format(f=shown, p=planned.text)
        return text
    if planned is None or planned == last:
        return ""
    if last.verb == CD and last.name == UP:
        return pick(DETOUR_UP, *key, "detour").format(c=display_dir(knowledge.previous_cwd), p=planned.text)
    if last.verb == CD:
        return pick(DETOUR_CD, *key, "detour").format(d=display_name(last.name), p=planned.text)
    return ""


def _plan_sentence(knowledge: Knowledge, decided: Plan, key: tuple) -> str:
    if not decided.goal:
        return pick(EXHAUSTED, *key, "exhausted")
    name = display_name(decided.goal[-1])
    if decided.answer:
        options = (
            READ_HIT
            if decided.action.verb == ID and knowledge.last_action == Action(CAT, decided.goal[-1])
            else GO_TO_HIT
        )
        if knowledge.kind == "custom":
            return f"`{name}` matches the question's words, so answer with it."
        return pick(options, *key, "hit").format(f=name, e=_evidence_text(knowledge))
    words = ", ".join(decided.matched)
    folder = decided.goal[:-1]
    if folder != knowledge.cwd:
        shown = name + ("/" if decided.goal_is_dir else "")
        return pick(HEAD_FOR, *key, "head").format(g=shown, w=display_dir(folder))
    if not decided.goal_is_dir:
        options = READ_HERE_MATCH if decided.matched else READ_HERE_PLAIN
        return pick(options, *key, "read").format(f=name, w=words)
    if decided.matched:
        return pick(ENTER_MATCH, *key, "enter").format(d=name, w=words)
    description, kinds = FOLDER_PURPOSES.get(decided.goal[-1].lower(), ("", ()))
    if description and knowledge.kind in kinds and knowledge.kind in FOLDER_BONUS_KINDS:
        what = description
        return pick(ENTER_ROLE, *key, "role").format(d=name, what=what, What=what[0].upper() + what[1:])
    return pick(ENTER_PLAIN, *key, "enter").format(d=name)


def reflect(knowledge: Knowledge, decided: Plan | None = None) -> str:
    """Return the teacher's reflection: what the last command showed, the plan and ``Next: <command>.``."""
    if knowledge.done:
        return pick(FINISHED, knowledge.task_id, knowledge.step, "done")
    decided = plan(knowledge) if decided is None else decided
    key = (knowledge.task_id, display_dir(knowledge.cwd), knowledge.step)
    sentences = []
    if knowledge.step == 0:
        goal = GOAL.get(knowledge.kind, GOAL["custom"])
        subject = defuse_markers(knowledge.subject)
        sentences.append(pick(goal, *key, "goal").format(s=subject, q=defuse_markers(knowledge.question)))
    sentences += [_last_sentence(knowledge, key), _plan_sentence(knowledge, decided, key)]
    command = decided.action.text
    sentences.append(f"Next: {command}" + ("" if command.endswith(".") else "."))
    return " ".join(s for s in sentences if s)
