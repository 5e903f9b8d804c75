"""AutoExplore tasks: the :class:`Task` record, JSONL files of tasks, validation and curriculum stages.

A task is a question about one repository (a directory tree on disk) whose answer is a file in it::

    {"task_id": "gymnasium:function:make_vec", "root": "/.../site-packages/gymnasium",
     "question": "Which file defines the function `make_vec`?", "targets": ["envs/registration.py"],
     "optimal_path": ["cd envs", "id registration.py"], "depth": 1, "kind": "function", "subject": "make_vec"}

Only ``task_id``, ``root``, ``question`` and ``targets`` are required; ``optimal_path`` and ``depth`` are derived
from the targets (and checked against them when given). A relative ``root`` in a task file is relative to the file's
directory.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from environments.auto_explore.actions import directory_view, nearest_target, route
from environments.auto_explore.sandbox import Sandbox, split_relpath
from environments.jsonl import jsonl_records, output_file, regular_file

#: Curriculum stages: the depth of the target file (number of ``cd`` from the root), easiest first, then all tasks.
STAGES: tuple[str, ...] = ("0", "1", "2", "3", "all")
#: Stage used when none is given.
DEFAULT_STAGE = "all"

_REQUIRED: dict[str, type] = {"task_id": str, "root": str, "question": str, "targets": list}
_OPTIONAL: dict[str, type] = {"optimal_path": list, "depth": int, "kind": str, "subject": str}


class TaskFileError(ValueError):
    """A malformed task file; the message names the file and the line."""


@dataclass
class Task:
    """One AutoExplore question and its answer.

    Attributes:
        task_id: Unique name of the task.
        root: The repository's root directory.
        question: What the agent reads, e.g. "Which file defines the function `foo`?".
        targets: Relative paths of the files that answer it (generated tasks have exactly one).
        optimal_path: Action texts of the shortest solution from the root (derived from ``targets`` if empty).
        depth: Number of ``cd`` on that path (derived if negative).
        kind: What is asked: ``function``, ``class``, ``column``, ``heading`` or ``custom``.
        subject: The name asked about (function, class, column or heading), used by the teacher.

    """

    task_id: str
    root: str
    question: str
    targets: list[str]
    optimal_path: list[str] = field(default_factory=list)
    depth: int = -1
    kind: str = "custom"
    subject: str = ""

    def __post_init__(self) -> None:
        self.root = os.fspath(self.root)
        self.targets = [os.fspath(t) for t in self.targets]
        if not self.targets:
            raise ValueError(f"Task {self.task_id!r} has no targets.")
        parts = [split_relpath(t) for t in self.targets]  # rejects absolute paths and '..'
        for target, target_parts in zip(self.targets, parts, strict=True):
            if not target_parts:
                raise ValueError(f"Task {self.task_id!r}: target {target!r} is not a file path.")
        best = nearest_target((), parts)
        expected_path = [a.text for a in route((), best)]
        expected_depth = len(best) - 1
        if self.optimal_path and list(self.optimal_path) != expected_path:
            raise ValueError(
                f"Task {self.task_id!r}: optimal_path {self.optimal_path} does not match its targets; "
                f"expected {expected_path}."
            )
        if self.depth >= 0 and self.depth != expected_depth:
            raise ValueError(
                f"Task {self.task_id!r}: depth {self.depth} does not match its targets ({expected_depth})."
            )
        self.optimal_path = expected_path
        self.depth = expected_depth

    @property
    def target_parts(self) -> list[tuple[str, ...]]:
        """The targets as tuples of names."""
        return [split_relpath(t) for t in self.targets]

    def to_dict(self) -> dict[str, Any]:
        """Return the task as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        """Build a task from a dict, checking fields and types.

        Raises:
            ValueError: for a missing or unknown field, a wrong type or inconsistent values.

        """
        if not isinstance(data, Mapping):
            raise ValueError(f"A task must be a JSON object, got {type(data).__name__}.")
        missing = [name for name in _REQUIRED if name not in data]
        if missing:
            raise ValueError(f"Missing field(s): {', '.join(missing)}.")
        unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
        if unknown:
            raise ValueError(f"Unknown field(s): {', '.join(unknown)}.")
        for name, kind in {**_REQUIRED, **_OPTIONAL}.items():
            if name not in data:
                continue
            value = data[name]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError(f"Field {name!r} must be of type {kind.__name__}, got {type(value).__name__}.")
            if kind is list and not all(isinstance(item, str) for item in value):
                raise ValueError(f"Field {name!r} must be a list of strings.")
        return cls(**dict(data))


def load_tasks(path: str | os.PathLike[str]) -> list[Task]:
    """Read tasks from a JSONL file (one JSON object per line; blank lines are skipped).

    Relative ``root`` values are taken relative to the file's directory.

    Raises:
        FileNotFoundError: if the file does not exist; IsADirectoryError or OSError: if it is a directory, a named
            pipe or anything else than a regular file.
        TaskFileError: for bad JSON (or not UTF-8, or nested too deeply), a missing field, a wrong type or a duplicate
            ``task_id``, naming file and line.

    """
    path = regular_file(path, "Task file")
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for number, data in jsonl_records(path, TaskFileError, "Task file"):
        try:
            task = Task.from_dict(data)
        except (ValueError, TypeError) as error:
            raise TaskFileError(f"{path}:{number}: bad task: {error}") from error
        if not os.path.isabs(task.root):
            task.root = os.path.normpath(os.path.join(path.parent, task.root))
        if task.task_id in seen:
            raise TaskFileError(
                f"{path}:{number}: duplicate task_id {task.task_id!r} (first on line {seen[task.task_id]})."
            )
        seen[task.task_id] = number
        tasks.append(task)
    return tasks


def save_tasks(tasks: Iterable[Task], path: str | os.PathLike[str]) -> Path:
    """Write tasks as JSONL (one object per line, keys in field order) and return the path.

    Raises:
        IsADirectoryError, NotADirectoryError or OSError: if ``path`` is a directory, lies under a file or is not a
            regular file (see :func:`~environments.jsonl.output_file`).
    """
    path = output_file(path, "Task file")
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for task in tasks:
            out.write(json.dumps(task.to_dict(), ensure_ascii=True) + "\n")
    return path


#: Keys of a task-generation request (the mapping form of ``tasks``).
GENERATE_KEYS = ("split", "packages", "roots", "seed", "max_tasks")


def generate_from_request(
    request: Mapping[str, Any],
    max_actions: int = 64,
    evidence_chars: int | None = None,
    dropped: Counter[str] | None = None,
) -> list[Task]:
    """Generate tasks from a request such as ``{"split": "val"}`` or ``{"packages": ["gymnasium"], "seed": 0}``.

    ``split`` names a split of the default corpus (its installed packages); ``packages`` and ``roots`` name trees
    directly. ``seed`` and ``max_tasks`` (per tree) go to the generator, and so do ``max_actions`` (only targets
    reachable within that many shown actions are asked for) and ``evidence_chars`` (only answers whose evidence
    ``cat`` shows within that many characters; see :func:`~environments.auto_explore.generation.generate_tasks`).
    ``dropped`` receives the count of left-out questions per reason.

    Raises:
        ValueError: for unknown keys, an unknown split or a request that names no tree.

    """
    from environments.auto_explore.corpus import DEFAULT_SPLIT_PACKAGES, package_root
    from environments.auto_explore.generation import generate_from_roots

    unknown = set(request) - set(GENERATE_KEYS)
    if unknown:
        raise ValueError(f"Unknown key(s) {sorted(unknown)} in a task request; known keys: {', '.join(GENERATE_KEYS)}.")
    packages = list(request.get("packages") or ())
    if request.get("split") is not None:
        split = str(request["split"])
        if split not in DEFAULT_SPLIT_PACKAGES:
            raise ValueError(f"Unknown split {split!r}; the default corpus has {', '.join(DEFAULT_SPLIT_PACKAGES)}.")
        packages += DEFAULT_SPLIT_PACKAGES[split]
    roots = [package_root(name) for name in packages] + list(request.get("roots") or ())
    if not roots:
        raise ValueError("A task request must name a split, packages or roots, e.g. {'split': 'train'}.")
    seed, max_tasks = int(request.get("seed", 0)), int(request.get("max_tasks", 200))
    return generate_from_roots(
        roots, seed=seed, max_tasks=max_tasks, max_actions=max_actions, evidence_chars=evidence_chars, dropped=dropped
    )


def coerce_tasks(
    tasks: str | os.PathLike[str] | Sequence[Task | Mapping[str, Any]] | Mapping[str, Any],
    max_actions: int = 64,
    evidence_chars: int | None = None,
) -> list[Task]:
    """Accept a JSONL path, a sequence of :class:`Task`/dicts or a generation request; return a list of tasks.

    A generation request is a mapping such as ``{"split": "train"}`` (see :func:`generate_from_request`), so a config
    can name tasks without a file; ``max_actions`` and ``evidence_chars`` go to the generator.

    Raises:
        TypeError: for anything else; ValueError: for an empty list or a bad task dict.

    """
    if isinstance(tasks, (str, os.PathLike)):
        result = load_tasks(tasks)
    elif isinstance(tasks, Mapping):
        result = generate_from_request(tasks, max_actions, evidence_chars)
    elif isinstance(tasks, Sequence):
        result = []
        for index, item in enumerate(tasks):
            if isinstance(item, Task):
                result.append(item)
            elif isinstance(item, Mapping):
                try:
                    result.append(Task.from_dict(item))
                except ValueError as error:
                    raise ValueError(f"Task #{index} is malformed: {error}") from error
            else:
                raise TypeError(f"Task #{index} must be a Task or a dict, got {type(item).__name__}.")
    else:
        raise TypeError(
            f"tasks must be a path to a JSONL file, a sequence of tasks or a request like {{'split': 'train'}}, "
            f"got {type(tasks).__name__}."
        )
    if not result:
        raise ValueError("No tasks given: AutoExplore needs at least one task.")
    return result


def check_task(task: Task, sandbox: Sandbox | None = None, max_actions: int = 64) -> None:
    """Check that ``task`` can be played: its root exists and every target is a visible file reachable in the sandbox.

    Reachable means every step from the root is among the shown actions for ``max_actions`` (see
    :func:`~environments.auto_explore.actions.shown_entries`).

    Args:
        task: The task.
        sandbox: A sandbox over ``task.root`` (built when ``None``).
        max_actions: Size of the action space the task will be played with.

    Raises:
        FileNotFoundError: if the root or a target does not exist (or is a symlink, hidden or not a regular file).
        ValueError: if a target is not reachable within the shown actions.

    """
    if sandbox is None:
        if not os.path.isdir(task.root):
            raise FileNotFoundError(f"Task {task.task_id!r}: repository root {task.root!r} does not exist.")
        sandbox = Sandbox(task.root)
    for target, parts in zip(task.targets, task.target_parts, strict=True):
        if not sandbox.is_file(parts):
            raise FileNotFoundError(
                f"Task {task.task_id!r}: target {target!r} is not a visible regular file under {task.root!r} "
                "(missing, a symlink, hidden, or inside a link)."
            )
        for depth in range(len(parts)):
            here = parts[:depth]
            view = directory_view(sandbox.listdir(here), max_actions, at_root=not here)
            shown = view.files if depth == len(parts) - 1 else view.dirs
            if parts[depth] not in shown:
                raise ValueError(
                    f"Task {task.task_id!r}: target {target!r} is not reachable with max_actions={max_actions}: "
                    f"{parts[depth]!r} is not among the entries shown in /{'/'.join(here)}. Generate tasks with the "
                    "same max_actions as the environment."
                )


def tasks_for_stage(tasks: Sequence[Task], stage: str) -> list[Task]:
    """Return the tasks of a curriculum stage: target depth ``int(stage)``, or all tasks for ``"all"``.

    Raises:
        ValueError: for an unknown stage.

    """
    if stage not in STAGES:
        raise ValueError(f"Unknown AutoExplore stage {stage!r}; known stages: {', '.join(STAGES)}.")
    if stage == "all":
        return list(tasks)
    return [task for task in tasks if task.depth == int(stage)]
