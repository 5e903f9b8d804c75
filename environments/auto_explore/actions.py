"""Admissible actions of one directory and the shortest route to a target file.

The agent has four commands: ``cd <dir>``, ``cd ..`` (not at the root), ``cat <file>`` and ``id <file>``. At most
``max_actions`` of them fit in the action space; when a directory has more entries than fit, a deterministic subset
is shown (see :func:`shown_entries`) and the rest are counted as not shown. Actions are ordered ``cd ..`` first, then
the ``cd``'s, the ``cat``'s and the ``id``'s, each sorted by name. Names in action texts are shown with
:func:`~environments.auto_explore.sandbox.display_name`, so a name cannot forge a section of the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from environments.auto_explore.sandbox import Listing, RelPath, display_name, parse_name

CD, CAT, ID = "cd", "cat", "id"
UP = ".."
VERBS = (CD, CAT, ID)


class Action(NamedTuple):
    """One command: ``verb`` is ``cd``, ``cat`` or ``id``; ``name`` an entry of the current directory or ``..``."""

    verb: str
    name: str

    @property
    def text(self) -> str:
        """The action as the agent reads it, e.g. ``"cd src"`` (the name shown with ``display_name``)."""
        return f"{self.verb} {display_name(self.name)}"


def parse_action(text: str) -> Action:
    """Turn an action text such as ``"cd src"`` back into an :class:`Action` (escaped names are unescaped).

    Raises:
        ValueError: if the text is not ``<verb> <name>`` with a known verb, or the name has a bad escape.

    """
    verb, _, name = text.partition(" ")
    if verb not in VERBS or not name:
        raise ValueError(f"Not an AutoExplore action: {text!r}; expected 'cd <dir>', 'cat <file>' or 'id <file>'.")
    return Action(verb, parse_name(name))


def shown_entries(listing: Listing, max_actions: int, at_root: bool) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    """Choose which entries of ``listing`` get actions when not all of them fit.

    A directory costs one action (``cd``), a file two (``cat`` and ``id``), and ``cd ..`` one below the root. When
    everything fits, everything is shown. Otherwise directories get up to half of the budget (more if there are few
    files), files the rest; within each kind the first names in sorted order are shown.

    Args:
        listing: The directory's visible entries.
        max_actions: Size of the action space.
        at_root: Whether this is the root (no ``cd ..``).

    Returns:
        The shown directory names, the shown file names and how many entries are not shown.

    """
    budget = max_actions - (0 if at_root else 1)
    dirs, files = listing.dirs, listing.files
    if len(dirs) + 2 * len(files) <= budget:
        return dirs, files, 0
    file_quota = min(len(files), max((budget - min(len(dirs), budget // 2)) // 2, 0))
    dir_quota = min(len(dirs), budget - 2 * file_quota)
    hidden = len(dirs) - dir_quota + len(files) - file_quota
    return dirs[:dir_quota], files[:file_quota], hidden


@dataclass(frozen=True)
class DirectoryView:
    """What the agent sees of one directory: shown entries and admissible actions.

    Attributes:
        dirs: Shown subdirectories.
        files: Shown files.
        not_shown: Number of entries left out for lack of actions.
        actions: Admissible actions in order.
        texts: Their texts (``info["actions"]``).
        error: Why the directory could not be listed, or ``""``.

    """

    dirs: tuple[str, ...]
    files: tuple[str, ...]
    not_shown: int
    actions: tuple[Action, ...]
    texts: tuple[str, ...]
    error: str = ""

    def index(self, action: Action) -> int | None:
        """Return the index of ``action`` among the admissible actions, or ``None``."""
        try:
            return self.actions.index(action)
        except ValueError:
            return None


def directory_view(listing: Listing, max_actions: int, at_root: bool) -> DirectoryView:
    """Build the :class:`DirectoryView` of a directory from its listing."""
    dirs, files, not_shown = shown_entries(listing, max_actions, at_root)
    actions: list[Action] = [] if at_root else [Action(CD, UP)]
    actions += [Action(CD, name) for name in dirs]
    actions += [Action(CAT, name) for name in files]
    actions += [Action(ID, name) for name in files]
    return DirectoryView(dirs, files, not_shown, tuple(actions), tuple(a.text for a in actions), listing.error)


def route(cwd: RelPath, target: RelPath) -> list[Action]:
    """Return the shortest command sequence from directory ``cwd`` to identifying file ``target``.

    Up with ``cd ..`` to the deepest common ancestor, down with ``cd`` along the target's directories, then ``id``.
    """
    target_dir = target[:-1]
    common = 0
    while common < min(len(cwd), len(target_dir)) and cwd[common] == target_dir[common]:
        common += 1
    steps = [Action(CD, UP)] * (len(cwd) - common)
    steps += [Action(CD, name) for name in target_dir[common:]]
    steps.append(Action(ID, target[-1]))
    return steps


def nearest_target(cwd: RelPath, targets: Sequence[RelPath]) -> RelPath:
    """Return the target with the shortest route from ``cwd`` (the first one on ties)."""
    return min(targets, key=lambda target: len(route(cwd, target)))


def next_step(cwd: RelPath, targets: Sequence[RelPath]) -> Action:
    """Return the first command of the shortest route from ``cwd`` to any of ``targets``."""
    target = nearest_target(cwd, targets)
    target_dir = target[:-1]
    depth = len(cwd)
    if target_dir[:depth] != cwd:
        return Action(CD, UP)
    if depth == len(target_dir):
        return Action(ID, target[-1])
    return Action(CD, target_dir[depth])
