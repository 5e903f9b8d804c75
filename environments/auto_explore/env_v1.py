"""AutoExplore v1: reading a file shows its evidence, the observation remembers what was explored.

Its teacher searches with only what the agent was shown.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from environments.auto_explore.actions import CAT, CD, ID, UP
from environments.auto_explore.env import (
    DEFAULT_CAT_CHARS,
    DEFAULT_LISTING_CHARS,
    MAX_QUESTION_CHARS,
    AutoExploreEnv,
    listing_line,
)
from environments.auto_explore.file_view import read_file_view
from environments.auto_explore.sandbox import RelPath, check_int, defuse_markers, display_dir
from environments.auto_explore.search_teacher import Knowledge, Plan, plan, reflect
from environments.auto_explore.tasks import Task
from environments.base import to_observation_text

#: Tasks of ``gym.make("ReflectRL/AutoExplore-v1")`` without arguments: a generation request (see
#: :func:`~environments.auto_explore.tasks.generate_from_request`) over two packages of the training split, a small
#: one with shallow targets and one with deep ones, so that every depth has tasks and it takes seconds.
DEFAULT_TASKS: Mapping[str, Any] = {"packages": ["peft", "lightning"], "max_tasks": 100}
#: Turns per episode (v0: 15): a search without the target needs more turns than the shortest path, entering and
#: leaving a folder costs two (docs/pipeline_auto_explore.md compares horizons).
DEFAULT_HORIZON = 30
#: Characters of the memory line at most, besides its label.
MAX_MEMORY_CHARS = 240
#: Room in the observation besides the question, listing, ``cat`` output and memory: labels, directory, notes.
_OVERHEAD = 256
_CUT_NOTE = "\n[... cut]"


class AutoExploreV1Env(AutoExploreEnv):
    """AutoExplore v1 (``ReflectRL/AutoExplore-v1``): v0's task, commands and rewards, with a new observation.

    What changes from :class:`~environments.auto_explore.env.AutoExploreEnv` (v0):

    * **Evidence.** ``cat <file>`` shows what a question can be answered from
      (:func:`~environments.auto_explore.file_view.read_file_view`): a Python file's outline (public ``def`` and
      ``class`` names with line numbers, methods on their class's line), a CSV/TSV file's header, a document's
      headings, the head of anything else; at most ``cat_chars`` characters. Tasks generated from a request (such as
      ``{"split": "train"}``) are only those whose answer shows its evidence within ``cat_chars``.
    * **Memory.** A line ``Explored (latest first): read /src/core.py; entered /src; ...`` lists the folders
      entered and files read in this episode, most recent first, at most ``memory_length`` of them and
      :data:`MAX_MEMORY_CHARS` characters.
    * **The cut keeps the question.** The observation is ``Question``, ``Dir``, ``Listing``, ``Explored``,
      ``Recent`` and ``Output`` lines; when it is longer than ``max_observation_chars`` (only possible with long
      names), the end is cut, never the question or the current directory.
    * **A teacher that searches** (:mod:`~environments.auto_explore.search_teacher`): ``teacher_reflection()`` and
      ``info["teacher_action"]`` come from a search over what the observations showed; it answers only after the
      evidence was shown. ``info["oracle_action"]`` is still the shortest route's next step (for measuring).
    * **Correctable mistakes.** ``info["mistake_actions"]``: entering a folder that holds no answer, reading a file
      that is not the answer, or ``cd ..`` out of a folder that holds one; never ``id``, and never the teacher's or
      the oracle's command.
    * ``available_stages``: the curriculum stages that have tasks (a shallow repository lacks the deep ones).
    * **A longer horizon**: :data:`DEFAULT_HORIZON` (30) turns by default, v0's 15 being too few for a search.

    Args:
        tasks: As for v0; ``None`` (default): :data:`DEFAULT_TASKS`.
        memory_length: Folders and files listed in the memory line at most (0: no memory line).
        max_observation_chars: At least 256 more than the question (500), ``max_listing_chars``, ``cat_chars`` and
            the memory line (240) together.
        **kwargs: The other arguments of v0 (``max_actions``, ``horizon``, rewards, ``cat_chars``, ...). ``cat_lines``
            bounds only the head of files without an outline, header or headings.

    Raises:
        ValueError: for bad arguments or tasks, as v0.

    """

    def __init__(
        self,
        tasks: str | os.PathLike[str] | Sequence[Task | Mapping[str, Any]] | Mapping[str, Any] | None = None,
        memory_length: int = 6,
        max_observation_chars: int = 4096,
        **kwargs: Any,
    ) -> None:
        self.memory_length = check_int("memory_length", memory_length, 0)
        listing = kwargs.get("max_listing_chars", DEFAULT_LISTING_CHARS)
        cat = kwargs.get("cat_chars", DEFAULT_CAT_CHARS)
        if isinstance(listing, int) and isinstance(cat, int):
            smallest = MAX_QUESTION_CHARS + listing + cat + MAX_MEMORY_CHARS + _OVERHEAD
            check_int("max_observation_chars", max_observation_chars, smallest,
                      why=f"the question, max_listing_chars={listing}, cat_chars={cat}, the memory line "
                      f"({MAX_MEMORY_CHARS}) and the labels must fit")  # fmt: skip
        self._memory: list[tuple[str, RelPath]] = []
        self._knowledge = Knowledge("", "custom", "", "")
        self._plan: Plan | None = None
        self._shown: dict[tuple[str, RelPath], tuple[tuple[str, ...], tuple[str, ...]]] = {}
        kwargs.setdefault("horizon", DEFAULT_HORIZON)
        super().__init__(
            DEFAULT_TASKS if tasks is None else tasks, max_observation_chars=max_observation_chars, **kwargs
        )

    @property
    def available_stages(self) -> tuple[str, ...]:
        """The curriculum stages that have tasks (``reset`` raises ``ValueError`` naming the depths for the others)."""
        return tuple(stage for stage in self.stages if self._pools[stage])

    # -- hooks of v0 ------------------------------------------------------------------------------------------------
    def _evidence_chars(self) -> int | None:
        return self.cat_chars

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start an episode, as v0 (see :meth:`AutoExploreEnv.reset`), with an empty memory."""
        self._memory = []
        self._knowledge = Knowledge("", "custom", "", "")
        self._plan = None
        return super().reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Take one command, as v0 (see :meth:`AutoExploreEnv.step`)."""
        self._knowledge.last_planned = self._plan.action if self._plan is not None else None
        self._knowledge.previous_cwd = self._cwd
        return super().step(action)

    def _read_file(self, parts: RelPath) -> str:
        assert self._sandbox is not None
        view = read_file_view(self._sandbox, parts, self.cat_lines, self.cat_chars)
        self._knowledge.reads[parts] = view
        self._remember("read", parts)
        return view.text

    def _remember(self, verb: str, parts: RelPath) -> None:
        if self.memory_length:
            self._memory = [(verb, parts)] + [entry for entry in self._memory if entry != (verb, parts)]
            del self._memory[self.memory_length :]

    def _listing_of(self, view: Any) -> str:
        assert self._sandbox is not None
        text, dirs, files = listing_line(view, self.max_listing_chars)
        self._shown[(self._sandbox.root, self._cwd)] = (dirs, files)
        return text

    def _enter(self, cwd: RelPath) -> None:
        assert self._task is not None and self._sandbox is not None
        knowledge = self._knowledge
        if knowledge.task_id != self._task.task_id or self._steps == 0:
            self._knowledge = knowledge = Knowledge(
                self._task.task_id, self._task.kind, self._task.subject, self._task.question
            )
        if cwd and (not self._memory or self._memory[0] != ("entered", cwd)) and cwd != self._cwd:
            self._remember("entered", cwd)
        self._cwd = cwd
        self._view = self._view_of(cwd)
        self._format_listing()  # records the names the listing shows
        knowledge.cwd = cwd
        knowledge.step = self._steps
        knowledge.last_action = self._last_action
        knowledge.last_invalid = self._last_invalid
        knowledge.done = self._done
        knowledge.listings.setdefault(cwd, self._shown[(self._sandbox.root, cwd)])
        super()._enter(cwd)
        self._plan = plan(knowledge)

    def _format_observation(self) -> str:
        assert self._task is not None
        question = self._task.question
        if len(question) > MAX_QUESTION_CHARS:
            question = question[: MAX_QUESTION_CHARS - 3] + "..."
        head = to_observation_text(f"Question: {defuse_markers(question)}\nDir: {display_dir(self._cwd)}")
        lines = [f"Listing: {self._format_listing()}"]
        if self.memory_length:
            lines.append(f"Explored (latest first): {self._memory_text()}")
        if self.history_length:
            lines.append(f"Recent: {'; '.join(self._history) if self._history else '(none)'}")
        if self._output:
            lines += ["Output:", self._output]
        body = to_observation_text("\n".join(lines))
        room = self.observation_space.max_length - len(head) - 1
        if len(body) > room:  # only the end is ever cut: the question and the directory stay
            body = body[: max(room - len(_CUT_NOTE), 0)] + _CUT_NOTE if room >= len(_CUT_NOTE) else ""
        return f"{head}\n{body}" if body else head

    def _memory_text(self) -> str:
        items = [f"{verb} {display_dir(parts)}" for verb, parts in self._memory]
        text = ""
        for index, item in enumerate(items):
            candidate = f"{text}; {item}" if text else item
            if len(candidate) > MAX_MEMORY_CHARS:
                return text + f" (+{len(items) - index} earlier)" if text else f"(+{len(items)} earlier)"
            text = candidate
        return text or "(nothing yet)"

    def _info(self) -> dict[str, Any]:
        info = super()._info()
        assert self._view is not None
        teacher = self._plan.action if self._plan is not None else None
        index = self._view.index(teacher) if teacher is not None else None
        info["teacher_action"] = 0 if index is None else index  # the plan is always admissible; 0 is a guard
        info["mistake_actions"] = self._mistake_indices(exclude={info["teacher_action"], info["oracle_action"]})
        return info

    def _mistake_indices(self, exclude: set[int]) -> list[int]:
        """Indices of wrong moves that do not end the episode (never ``id``): see the class docstring."""
        assert self._view is not None
        below = [target for target in self._targets if target[: len(self._cwd)] == self._cwd]
        wrong = []
        for index, action in enumerate(self._view.actions):
            if index in exclude or action.verb == ID:
                continue
            if action.verb == CD and action.name == UP:
                is_wrong = bool(below)
            elif action.verb == CD:
                folder = self._cwd + (action.name,)
                is_wrong = not any(target[: len(folder)] == folder for target in self._targets)
            else:
                is_wrong = action.verb == CAT and (self._cwd + (action.name,)) not in self._targets
            if is_wrong:
                wrong.append(index)
        return wrong

    def teacher_reflection(self) -> str:
        """Return the search teacher's reflection; it ends with ``Next: <info["teacher_action"]>.``.

        It states only what this episode's observations showed (see :mod:`environments.auto_explore.search_teacher`);
        after a command other than its plan it says what that command showed or that it left the plan.

        Raises:
            RuntimeError: before the first reset.

        """
        if self._task is None or self._plan is None:
            raise RuntimeError("teacher_reflection() needs an episode: call reset() first.")
        return reflect(self._knowledge, self._plan)
