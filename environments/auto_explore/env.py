"""The AutoExplore environment: explore a real, read-only directory tree to find the file that answers a question."""

from __future__ import annotations

import math
import numbers
import os
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from environments.auto_explore.actions import (
    CAT,
    CD,
    ID,
    UP,
    Action,
    DirectoryView,
    directory_view,
    nearest_target,
    next_step,
)
from environments.auto_explore.sandbox import (
    MAX_READ_BYTES_LIMIT,
    RelPath,
    Sandbox,
    check_int,
    defuse_markers,
    display_dir,
    display_name,
)
from environments.auto_explore.tasks import DEFAULT_STAGE, STAGES, Task, check_task, coerce_tasks, tasks_for_stage
from environments.auto_explore.teacher import TeacherState, reflect
from environments.base import TextEnv

_RESET_OPTIONS = frozenset({"stage", "task_id"})
#: Characters of the question shown at most.
MAX_QUESTION_CHARS = 500
#: Default ``cat_chars`` and ``max_listing_chars``.
DEFAULT_CAT_CHARS, DEFAULT_LISTING_CHARS = 600, 1500
#: Smallest ``cat_chars``: room for the head of one line (a partial line is shown when more than 20 chars fit).
MIN_CAT_CHARS = 32
#: Smallest ``max_listing_chars``: room for a few names.
MIN_LISTING_CHARS = 16
#: Room in the observation besides the question, listing and ``cat`` output: labels, a short directory, notes.
_OBSERVATION_OVERHEAD = 256


class AutoExploreEnv(TextEnv):
    """Find the file that answers a question by exploring a repository with ``cd``, ``cat`` and ``id``.

    Each turn the agent picks one admissible command (an index into ``info["actions"]``):

    * ``cd <dir>`` / ``cd ..`` (not at the root): move;
    * ``cat <file>``: show the file's first lines (at most ``cat_lines`` lines and ``cat_chars`` characters);
    * ``id <file>``: answer with that file; this ends the episode.

    Actions are ordered ``cd ..``, then the ``cd``'s, ``cat``'s and ``id``'s, each sorted by name. When a directory has
    more entries than ``max_actions`` allows, a deterministic subset is shown and the observation says how many are
    not. Nothing outside a task's root is ever listed or read (see :class:`~environments.auto_explore.sandbox.Sandbox`).

    The observation (one ``str``) holds the question, the current directory (``/`` is the root), its listing (folders
    end with ``/``), the last ``history_length`` commands and the bounded output of the last one. The action texts
    are not in it; they are in ``info["actions"]``. Names are data: everywhere (listing, directory, action texts,
    the teacher's reflection) they are shown with :func:`~environments.auto_explore.sandbox.display_name`, which
    escapes ``#``, backslashes and control characters, so no name can forge a section marker of the prompt; names
    with spaces or quotes are quoted in the listing.

    Rewards (constructor arguments, on the paper's scale):

    * ``step_reward`` (default -0.02) for a ``cd`` or ``cat``;
    * ``success_reward`` (default +1.0) for identifying a target file (episode ends, ``info["success"]`` True);
    * ``wrong_answer_reward`` (default -1.0) for identifying another file (episode ends);
    * ``invalid_action_reward`` (default -0.1) for an index inside the action space but outside ``info["actions"]``
      (nothing happens, ``info["invalid_action"]`` True, the episode goes on);
    * ``timeout_reward`` (default -1.0) added at the ``horizon``-th turn when the episode has not ended (truncated).

    ``info`` every turn: ``actions``, ``oracle_action`` (index of the next step of the shortest route from the
    current directory to a target), ``success``, ``invalid_action``, ``stage``, ``task_id``, ``cwd``, ``step``,
    ``depth`` (of the task's target).

    Curriculum stages (``reset(options={"stage": ...})``): ``"0"``-``"3"`` sample tasks whose target lies at exactly
    that depth, ``"all"`` (default) every task. ``options={"task_id": ...}`` plays a given task.

    Args:
        tasks: A JSONL task file or a sequence of :class:`~environments.auto_explore.tasks.Task` or dicts.
        max_actions: Size of the action space ``Discrete(max_actions)`` (at least 3).
        horizon: Turns per episode before truncation (at least 1).
        stage: Default curriculum stage.
        step_reward: Reward of an ordinary turn (a finite number, like every reward).
        success_reward: Reward for identifying a target.
        wrong_answer_reward: Reward for identifying a wrong file.
        invalid_action_reward: Reward of an invalid index.
        timeout_reward: Added when the horizon is reached.
        history_length: Commands shown in the observation (at least 0).
        cat_lines: Lines shown by ``cat`` (at least 1).
        cat_chars: Characters shown by ``cat`` (at least 32).
        max_listing_chars: Characters of the listing in the observation (at least 16; further entries are counted as
            not shown).
        max_read_bytes: Bytes read at most from a file (1 to 64 MiB).
        skip_unreachable: Drop tasks whose target is not reachable with ``max_actions`` instead of raising.
        max_observation_chars: Length bound of the observation space; at least 256 more than the question (500),
            ``max_listing_chars`` and ``cat_chars`` together, so that they always fit.
        render_mode: ``None``, ``"ansi"`` or ``"human"``.

    Raises:
        ValueError: for bad arguments (naming the argument, its value and the valid range) or tasks;
            FileNotFoundError: for a missing root or target.

    """

    stages = STAGES

    def __init__(
        self,
        tasks: str | os.PathLike[str] | Sequence[Task | Mapping[str, Any]],
        max_actions: int = 64,
        horizon: int = 15,
        stage: str = DEFAULT_STAGE,
        step_reward: float = -0.02,
        success_reward: float = 1.0,
        wrong_answer_reward: float = -1.0,
        invalid_action_reward: float = -0.1,
        timeout_reward: float = -1.0,
        history_length: int = 3,
        cat_lines: int = 10,
        cat_chars: int = DEFAULT_CAT_CHARS,
        max_listing_chars: int = DEFAULT_LISTING_CHARS,
        max_read_bytes: int = 8192,
        skip_unreachable: bool = False,
        max_observation_chars: int = 4096,
        render_mode: str | None = None,
    ) -> None:
        max_actions = check_int("max_actions", max_actions, 3, why="cd .., cat and id of one file")
        self.horizon = check_int("horizon", horizon, 1)
        self.history_length = check_int("history_length", history_length, 0)
        self.cat_lines = check_int("cat_lines", cat_lines, 1)
        self.cat_chars = check_int("cat_chars", cat_chars, MIN_CAT_CHARS, why="room for the head of one line")
        self.max_listing_chars = check_int("max_listing_chars", max_listing_chars, MIN_LISTING_CHARS)
        max_read_bytes = check_int("max_read_bytes", max_read_bytes, 1, MAX_READ_BYTES_LIMIT)
        smallest = MAX_QUESTION_CHARS + self.max_listing_chars + self.cat_chars + _OBSERVATION_OVERHEAD
        max_observation_chars = check_int(
            "max_observation_chars",
            max_observation_chars,
            smallest,
            why=f"the question, max_listing_chars={self.max_listing_chars}, cat_chars={self.cat_chars} and the "
            "labels must fit",
        )
        self.step_reward = _check_reward("step_reward", step_reward)
        self.success_reward = _check_reward("success_reward", success_reward)
        self.wrong_answer_reward = _check_reward("wrong_answer_reward", wrong_answer_reward)
        self.invalid_action_reward = _check_reward("invalid_action_reward", invalid_action_reward)
        self.timeout_reward = _check_reward("timeout_reward", timeout_reward)
        super().__init__(max_actions, max_observation_chars=max_observation_chars, render_mode=render_mode)
        self.stage = self._stage_from_options({"stage": stage}, DEFAULT_STAGE)

        self._sandboxes: dict[str, Sandbox] = {}
        kept: list[Task] = []
        for task in coerce_tasks(tasks, max_actions, self._evidence_chars()):
            if not os.path.isdir(task.root):
                raise FileNotFoundError(f"Task {task.task_id!r}: repository root {task.root!r} does not exist.")
            real = os.path.realpath(task.root)
            if real not in self._sandboxes:
                self._sandboxes[real] = Sandbox(real, max_read_bytes=max_read_bytes)
            try:
                check_task(task, self._sandboxes[real], self.max_actions)
            except ValueError:
                if skip_unreachable:
                    continue
                raise
            kept.append(task)
        if not kept:
            raise ValueError("No playable tasks: every task's target is unreachable with this max_actions.")
        self.tasks: list[Task] = kept
        self._by_id: dict[str, Task] = {}
        for task in kept:
            if task.task_id in self._by_id:
                raise ValueError(f"Duplicate task_id {task.task_id!r}.")
            self._by_id[task.task_id] = task
        self._pools = {name: tasks_for_stage(kept, name) for name in self.stages}
        self._pool_for(self.stage)  # fail early when the default stage has no tasks
        self._views: dict[tuple[str, RelPath], DirectoryView] = {}
        self._listing_texts: dict[tuple[str, RelPath], str] = {}  # the listing line of each view, same keys

        self._task: Task | None = None
        self._sandbox: Sandbox | None = None
        self._targets: list[RelPath] = []
        self._episode_stage = self.stage
        self._cwd: RelPath = ()
        self._previous_cwd: RelPath = ()
        self._view: DirectoryView | None = None
        self._history: deque[str] = deque(maxlen=max(self.history_length, 0))
        self._output = ""
        self._steps = 0
        self._done = False
        self._success = False
        self._last_action: Action | None = None
        self._last_invalid = False
        self._last_was_oracle = True
        self._oracle: Action | None = None
        self._observation = ""

    # -- public helpers ---------------------------------------------------------------------------------------------
    @property
    def task(self) -> Task | None:
        """The task of the current episode (``None`` before the first reset)."""
        return self._task

    @property
    def current_actions(self) -> Sequence[str]:
        """The admissible action texts of the current turn."""
        return list(self._view.texts) if self._view is not None else []

    def tasks_of_stage(self, stage: str) -> list[Task]:
        """Return the tasks a stage samples from.

        Raises:
            ValueError: for an unknown stage.

        """
        stage = self._stage_from_options({"stage": stage}, self.stage)
        return list(self._pools[stage])

    # -- gymnasium API ----------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start an episode on a task sampled (with ``self.np_random``) from the stage, or on ``options["task_id"]``.

        Raises:
            ValueError: for an unknown stage, a stage without tasks, an unknown task id or an unknown option.
            TypeError: if ``options`` is not a dict or ``options["task_id"]`` is not a string.

        """
        super().reset(seed=seed)
        if options is not None and not isinstance(options, Mapping):
            raise TypeError(
                f"reset options must be a dict such as {{'stage': '1'}} or {{'task_id': '<id>'}} (or None), "
                f"got {type(options).__name__} {options!r}."
            )
        options = dict(options or {})
        unknown = set(options) - _RESET_OPTIONS
        if unknown:
            raise ValueError(f"Unknown reset option(s) {sorted(unknown)}; AutoExplore knows {sorted(_RESET_OPTIONS)}.")
        stage = self._stage_from_options(options, self.stage)
        task_id = options.get("task_id")
        if task_id is not None:
            if not isinstance(task_id, str):
                raise TypeError(
                    f"Reset option 'task_id' must be one task id (a str, e.g. {self.tasks[0].task_id!r}), "
                    f"got {type(task_id).__name__} {task_id!r}."
                )
            if task_id not in self._by_id:
                raise ValueError(f"Unknown task_id {task_id!r}; this environment has {len(self.tasks)} tasks.")
            task = self._by_id[task_id]
        else:
            pool = self._pool_for(stage)
            task = pool[int(self.np_random.integers(len(pool)))]
        self._task = task
        self._sandbox = self._sandboxes[os.path.realpath(task.root)]
        self._targets = task.target_parts
        self._episode_stage = stage
        self._cwd = ()
        self._previous_cwd = ()
        self._history.clear()
        self._output = ""
        self._steps = 0
        self._done = False
        self._success = False
        self._last_action = None
        self._last_invalid = False
        self._last_was_oracle = True
        self._enter(())
        return self._observation, self._info()

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Take one command; see the class docstring for rewards.

        Raises:
            ValueError: if ``action`` is not an integer in the action space.
            RuntimeError: before the first reset or after the episode ended.

        """
        index = self._validate_action(action)
        if self._task is None or self._view is None or self._sandbox is None:
            raise RuntimeError("AutoExploreEnv.step() called before reset().")
        if self._done:
            raise RuntimeError("The episode is over; call reset() to start a new one.")
        self._steps += 1
        self._previous_cwd = self._cwd
        terminated = False
        if index >= len(self._view.actions):
            reward = self.invalid_action_reward
            self._history.append("(invalid)")
            self._output = (
                f"Invalid action {index}: there are only {len(self._view.actions)} actions here. Nothing happened."
            )
            self._last_action, self._last_invalid, self._last_was_oracle = None, True, False
            cwd = self._cwd
        else:
            chosen = self._view.actions[index]
            self._last_action, self._last_invalid = chosen, False
            self._last_was_oracle = chosen == self._oracle
            self._history.append(chosen.text)
            reward = self.step_reward
            cwd = self._cwd
            self._output = ""
            if chosen.verb == CD:
                cwd = self._cwd[:-1] if chosen.name == UP else self._cwd + (chosen.name,)
            elif chosen.verb == CAT:
                self._output = self._read_file(self._cwd + (chosen.name,))
            elif chosen.verb == ID:
                terminated = True
                if self._cwd + (chosen.name,) in self._targets:
                    self._success = True
                    reward = self.success_reward
                    self._output = f"Correct: {display_name(chosen.name)} answers the question."
                else:
                    reward = self.wrong_answer_reward
                    self._output = f"Wrong: {display_name(chosen.name)} does not answer the question."
        truncated = not terminated and self._steps >= self.horizon
        if truncated:
            reward += self.timeout_reward
            self._output = (self._output + "\n" if self._output else "") + "Out of steps: the episode is over."
        self._done = terminated or truncated
        self._enter(cwd)
        return self._observation, float(reward), terminated, truncated, self._info()

    def teacher_reflection(self) -> str:
        """Return the teacher's reflection on the current state; it ends with ``Next: <oracle command>.``.

        After a command that was not the oracle's (a wrong ``cd``, a ``cat`` of another file, an invalid index) the
        reflection says what went wrong and how to get back on the path.

        Raises:
            RuntimeError: before the first reset.

        """
        if self._task is None or self._oracle is None:
            raise RuntimeError("teacher_reflection() needs an episode: call reset() first.")
        return reflect(self._teacher_state())

    # -- internals --------------------------------------------------------------------------------------------------
    def _pool_for(self, stage: str) -> list[Task]:
        pool = self._pools[stage]
        if not pool:
            depths = sorted({task.depth for task in self.tasks})
            raise ValueError(
                f"AutoExplore stage {stage!r} has no tasks (it needs targets at depth {stage}); "
                f"the given tasks have target depths {depths}."
            )
        return pool

    def _evidence_chars(self) -> int | None:
        """The ``evidence_chars`` of tasks generated from a request (v0: none; its ``cat`` shows the head)."""
        return None

    def _read_file(self, parts: RelPath) -> str:
        """What ``cat`` shows of file ``parts``."""
        assert self._sandbox is not None
        return self._sandbox.head(parts, self.cat_lines, self.cat_chars)

    def _view_of(self, cwd: RelPath) -> DirectoryView:
        assert self._sandbox is not None
        key = (self._sandbox.root, cwd)
        view = self._views.get(key)
        if view is None:
            view = directory_view(self._sandbox.listdir(cwd), self.max_actions, at_root=not cwd)
            self._views[key] = view
        return view

    def _enter(self, cwd: RelPath) -> None:
        """Move to ``cwd`` and recompute the view, the oracle and the observation."""
        self._cwd = cwd
        self._view = self._view_of(cwd)
        self._oracle = next_step(cwd, self._targets)
        self._observation = self._check_observation(self._format_observation())

    def _oracle_index(self) -> int:
        assert self._view is not None and self._oracle is not None
        index = self._view.index(self._oracle)
        if index is None:  # the tree changed under us; fall back to going up (or the first action at the root)
            index = self._view.index(Action(CD, UP)) or 0
        return index

    def _format_listing(self) -> str:
        assert self._view is not None and self._sandbox is not None
        key = (self._sandbox.root, self._cwd)
        text = self._listing_texts.get(key)
        if text is None:
            text = self._listing_texts[key] = self._listing_of(self._view)
        return text

    def _listing_of(self, view: DirectoryView) -> str:
        return listing_line(view, self.max_listing_chars)[0]

    def _format_observation(self) -> str:
        assert self._task is not None
        question = self._task.question
        if len(question) > MAX_QUESTION_CHARS:
            question = question[: MAX_QUESTION_CHARS - 3] + "..."
        question = defuse_markers(question)  # a question can quote file contents (a heading, a column)
        lines = [
            f"Question: {question}",
            f"Dir: {display_dir(self._cwd)}",
            f"Listing: {self._format_listing()}",
            f"Recent: {'; '.join(self._history) if self._history else '(none)'}",
        ]
        if self._output:
            lines.append("Output:")
            lines.append(self._output)
        return "\n".join(lines)

    def _info(self) -> dict[str, Any]:
        assert self._task is not None and self._view is not None
        return {
            "actions": list(self._view.texts),
            "oracle_action": self._oracle_index(),
            "success": self._success,
            "invalid_action": self._last_invalid,
            "stage": self._episode_stage,
            "task_id": self._task.task_id,
            "cwd": display_dir(self._cwd),
            "step": self._steps,
            "depth": self._task.depth,
        }

    def _teacher_state(self) -> TeacherState:
        assert self._task is not None and self._oracle is not None
        target = nearest_target(self._cwd, self._targets)
        return TeacherState(
            task_id=self._task.task_id,
            kind=self._task.kind,
            subject=self._task.subject,
            question=self._task.question,
            cwd=self._cwd,
            target=target,
            next_action=self._oracle,
            step=self._steps,
            last_action=self._last_action,
            last_invalid=self._last_invalid,
            last_was_oracle=self._last_was_oracle,
            previous_cwd=self._previous_cwd,
            done=self._done,
        )

    def _render_text(self) -> str:
        if self._task is None:
            return "(AutoExplore: call reset() first)"
        actions = "\n".join(f"{i}. {text}" for i, text in enumerate(self.current_actions))
        return f"{self._observation}\nActions:\n{actions}"


def listing_line(view: DirectoryView, max_chars: int) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Return the listing of a directory as the observation shows it, and the folder and file names it shows.

    Folders end with ``/``; names that do not fit in ``max_chars`` are counted as not shown.
    """
    if view.error:
        return f"(cannot list: {view.error})", (), ()
    entries = [(_listed(name) + "/", name, True) for name in view.dirs] + [(_listed(n), n, False) for n in view.files]
    if not entries:
        return "(empty)", (), ()
    shown: list[tuple[str, str, bool]] = []
    used = 0
    for entry in entries:
        if used + len(entry[0]) + 1 > max_chars:
            break
        shown.append(entry)
        used += len(entry[0]) + 1
    not_shown = view.not_shown + len(entries) - len(shown)
    text = " ".join(text for text, _, _ in shown)
    if not_shown:
        text += f" (+{not_shown} not shown)"
    dirs = tuple(name for _, name, is_dir in shown if is_dir)
    return text, dirs, tuple(name for _, name, is_dir in shown if not is_dir)


def _listed(name: str) -> str:
    """Return a name as the listing shows it: escaped, and quoted when it has spaces or quotes."""
    shown = display_name(name)
    if " " in shown or '"' in shown:
        return '"' + shown.replace('"', '\\"') + '"'
    return shown


def _check_reward(name: str, value: object) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ValueError(f"{name} must be a finite number, got {value!r}.")
