"""Import the AutoExplore tasks released with the paper into our task format.

The paper's task files (``data/auto_explore/tasks*/data.json``) are JSON lists (JSONL is accepted too) of records::

    {"question": "How is the learning rate scheduled?", "answer": "...", "root": "some_repo",
     "filename": "src/train.py", "optimal_path": ["ls", "cd src", "ls", "cat train.py"], "n_level": 1, "model": "gpt-4"}

``root`` is relative to the directory of the paper's repositories (``--repos-root``) and must stay inside it: a root
that climbs out of it (``..``, an absolute path elsewhere, a symbolic link pointing outside) is refused. ``filename``
is relative to ``root`` (a list of files in later releases), and ``optimal_path`` uses ``ls``,
``cd`` and ``cat`` with paths quoted when they hold a space. Our :class:`~environments.auto_explore.tasks.Task` has no
``ls`` (every observation lists the directory) and answers with ``id``: the path is converted (``ls`` dropped, the
final ``cat`` read as ``id``) and checked against ``filename``; ``n_level`` is checked against the depth.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from environments.auto_explore.tasks import Task, TaskFileError, check_task, save_tasks
from environments.jsonl import json_list_records, jsonl_records, open_regular, output_file, regular_file


def _unwrap(name: str) -> str:
    """A path without the quotes the paper put around names with spaces."""
    name = name.strip()
    while len(name) >= 2 and name[0] in "'\"" and name[0] == name[-1]:
        name = name[1:-1]
    return name


def convert_optimal_path(commands: Sequence[str]) -> list[str]:
    """The paper's optimal path in our actions: ``ls`` dropped, ``cd`` kept, the final ``cat``/``id`` as ``id``.

    Raises:
        ValueError: for a command other than ``ls``, ``cd``, ``cat`` and ``id``, or a ``cat`` before the end.
    """
    steps: list[str] = []
    for position, command in enumerate(commands):
        verb, _, name = str(command).strip().partition(" ")
        if verb == "ls" and not name.strip():
            continue
        if verb == "cd" and name.strip():
            steps.append(f"cd {_unwrap(name)}")
        elif verb in ("cat", "id") and name.strip() and position == len(commands) - 1:
            steps.append(f"id {_unwrap(name)}")
        else:
            raise ValueError(f"step {position} of optimal_path, {command!r}, is not 'ls', 'cd <dir>' or a final 'cat'")
    return steps


def paper_record_to_task(
    record: Mapping[str, Any], index: int, repos_root: str | os.PathLike[str] | None = None
) -> Task | None:
    """One paper record as a :class:`Task` (``None`` for a record without a question, which the paper skipped too).

    The task id is ``<root>#<index>`` (the record's position in the file).

    Raises:
        ValueError: for a missing or bad field, or an ``optimal_path`` / ``n_level`` that does not match the file.
    """
    if not isinstance(record, Mapping):
        raise ValueError(f"a record must be a JSON object, got {type(record).__name__}")
    missing = [name for name in ("root", "filename", "question") if name not in record]
    if missing:
        raise ValueError(f"missing field {', '.join(repr(m) for m in missing)} (a task needs root, filename, question)")
    root, question, filename = record["root"], record["question"], record["filename"]
    if not isinstance(root, str) or not root or not isinstance(question, str):
        raise ValueError("fields 'root' and 'question' must be strings ('root' not empty)")
    if not question.strip():
        return None
    files = [filename] if isinstance(filename, str) else filename
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f for f in files):
        raise ValueError("field 'filename' must be a path or a non-empty list of paths")
    targets = [_unwrap(f).replace("\\", "/").removeprefix("./") for f in files]
    base = Path(repos_root) if repos_root is not None else Path(".")
    location = os.path.normpath(base / root)  # an absolute root replaces the base, and must still be inside it
    inside = os.path.realpath(base)
    if os.path.commonpath([inside, os.path.realpath(location)]) != inside:
        raise ValueError(
            f"root {root!r} is outside the repositories directory {os.path.abspath(base)} (resolved to "
            f"{os.path.realpath(location)}); a task's root must be a repository inside --repos-root"
        )
    task = Task(task_id=f"{root}#{index}", root=os.path.abspath(location), question=question.strip(), targets=targets)
    if "optimal_path" in record and len(targets) == 1:
        path = record["optimal_path"]
        if not isinstance(path, list) or not all(isinstance(step, str) for step in path):
            raise ValueError("field 'optimal_path' must be a list of commands")
        steps = convert_optimal_path(path)
        if steps != task.optimal_path:
            raise ValueError(f"optimal_path {path} does not lead to {targets[0]!r} (expected {task.optimal_path})")
    level = record.get("n_level")
    if level is not None and len(targets) == 1 and level != task.depth:
        raise ValueError(f"n_level {level} does not match the depth of {targets[0]!r} ({task.depth})")
    return task


def _records(path: Path) -> list[tuple[int, str, Any]]:
    """``(index, location, record)`` of a JSON list or a JSONL file.

    ``location`` is ``file:line``, followed in a JSON list by the record's position (``record 2``).
    """
    with open_regular(path, "Task file") as handle:
        head = handle.read(4096).lstrip()
    if head.startswith(b"["):
        records = json_list_records(path, TaskFileError, "Task file")
        return [(position - 1, f"{path}:{line}: record {position}", record) for position, line, record in records]
    lines = jsonl_records(path, TaskFileError, "Task file")
    return [(index, f"{path}:{line}", record) for index, (line, record) in enumerate(lines)]


def import_paper_tasks(
    path: str | os.PathLike[str],
    repos_root: str | os.PathLike[str] | None = None,
    max_actions: int | None = 64,
    skip_unplayable: bool = False,
) -> tuple[list[Task], dict[str, int]]:
    """Read the paper's task file and return our tasks, with counts of what was skipped.

    Args:
        path: The paper's ``data.json`` (a JSON list) or a JSONL file of the same records.
        repos_root: Directory of the paper's repositories that relative ``root`` values are in (default: the task
            file's directory).
        max_actions: Check that each task can be played with this action space (its root and target exist and the
            target is reachable); ``None``: no check.
        skip_unplayable: Skip tasks that fail that check instead of raising.

    Returns:
        The tasks and counts: ``records``, ``imported``, ``no_question`` (skipped, as in the paper) and
        ``unplayable`` (skipped with ``skip_unplayable``).

    Raises:
        FileNotFoundError: for a missing task file (or, without ``skip_unplayable``, a missing root or target).
        TaskFileError: for a malformed record, naming the file and the record.
        ValueError: (without ``skip_unplayable``) for a target not reachable with ``max_actions``.
    """
    path = regular_file(path, "Task file")
    repos_root = Path(repos_root) if repos_root is not None else path.parent
    counts = {"records": 0, "imported": 0, "no_question": 0, "unplayable": 0}
    tasks: list[Task] = []
    for index, line, record in _records(path):
        counts["records"] += 1
        try:
            task = paper_record_to_task(record, index, repos_root)
        except ValueError as error:
            raise TaskFileError(f"{line}: bad task: {error}.") from None
        if task is None:
            counts["no_question"] += 1
            continue
        if max_actions is not None:
            try:
                check_task(task, max_actions=max_actions)
            except (OSError, ValueError) as error:
                if not skip_unplayable:
                    raise type(error)(f"{line}: {error}") from None
                counts["unplayable"] += 1
                continue
        tasks.append(task)
    counts["imported"] = len(tasks)
    return tasks, counts


def main(argv: list[str] | None = None) -> int:
    """``reflect-rl import-tasks``: convert the paper's AutoExplore task file into a JSONL file of our tasks."""
    parser = argparse.ArgumentParser(
        prog="reflect-rl import-tasks",
        description="Convert the paper's AutoExplore tasks (root, filename, question, optimal_path) into our JSONL "
        "task format, for ReflectRL/AutoExplore-v0's tasks argument.",
    )
    parser.add_argument("tasks", type=Path, help="the paper's data.json (a JSON list) or a JSONL file of its records")
    parser.add_argument("--repos-root", type=Path, default=None, help="where the repositories are (default: beside)")
    parser.add_argument("--out", type=Path, required=True, help="the JSONL task file to write")
    parser.add_argument("--max-actions", type=int, default=64, help="action space the tasks must be playable with")
    parser.add_argument("--no-check", action="store_true", help="do not check that roots and targets exist")
    parser.add_argument("--skip-unplayable", action="store_true", help="skip tasks that cannot be played, not fail")
    args = parser.parse_args(argv)
    output_file(args.out, "--out")
    if args.repos_root is not None and not args.no_check and not args.repos_root.is_dir():
        raise NotADirectoryError(
            f"--repos-root {args.repos_root} is not a directory; give the directory of the paper's repositories."
        )
    tasks, counts = import_paper_tasks(
        args.tasks, args.repos_root, None if args.no_check else args.max_actions, args.skip_unplayable
    )
    if not tasks:
        raise ValueError(f"No task of {args.tasks} could be imported ({counts}).")
    save_tasks(tasks, args.out)
    print(
        f"{counts['imported']} of {counts['records']} tasks -> {args.out} ({counts['no_question']} without a question"
        f", {counts['unplayable']} unplayable skipped)",
        file=sys.stderr,
    )
    return 0
