"""Train/validation/test task sets split by repository: no repository (root) appears in two splits."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from environments.auto_explore.corpus import default_split_roots
from environments.auto_explore.generation import generate_from_roots
from environments.auto_explore.tasks import Task

SPLITS: tuple[str, ...] = ("train", "val", "test")

PathLike = str | os.PathLike[str]


def _real(root: PathLike) -> Path:
    path = Path(os.path.realpath(os.fspath(root)))
    if not path.is_dir():
        raise FileNotFoundError(f"Repository root {os.fspath(root)!r} does not exist or is not a directory.")
    return path


def _check_disjoint(assignment: Mapping[str, Sequence[Path]]) -> None:
    """Refuse a root given twice or inside another root (its files would be in two splits)."""
    owners: list[tuple[Path, str]] = [(root, split) for split, roots in assignment.items() for root in roots]
    for index, (root, split) in enumerate(owners):
        for other, other_split in owners[index + 1 :]:
            if root == other or root in other.parents or other in root.parents:
                raise ValueError(
                    f"Repository roots overlap: {root} ({split}) and {other} ({other_split}); every root must be a "
                    "separate tree in exactly one split."
                )


def split_roots(
    roots: Sequence[PathLike], fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
) -> dict[str, list[Path]]:
    """Assign whole repositories to train/val/test, deterministically given ``seed``.

    Each split with a positive fraction gets at least one root; the rest go by the fractions.

    Args:
        roots: Repository directories (distinct, not nested).
        fractions: Shares of train, val and test (normalised).
        seed: Seed of the shuffle.

    Raises:
        ValueError: for overlapping roots, bad fractions, or fewer roots than non-empty splits.

    """
    if len(fractions) != len(SPLITS) or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise ValueError(f"fractions must be three non-negative numbers (train, val, test), got {tuple(fractions)}.")
    real = sorted({_real(root) for root in roots})
    if len(real) != len(roots):
        raise ValueError("A repository root is given twice.")
    _check_disjoint({"all": real})
    wanted = [split for split, fraction in zip(SPLITS, fractions, strict=True) if fraction > 0]
    if len(real) < len(wanted):
        raise ValueError(f"{len(real)} repositories cannot fill {len(wanted)} splits ({', '.join(wanted)}).")
    random.Random(seed).shuffle(real)
    total = sum(fractions)
    counts = {split: (1 if fraction > 0 else 0) for split, fraction in zip(SPLITS, fractions, strict=True)}
    for _ in range(len(real) - sum(counts.values())):  # give each further root to the split furthest below its share
        split = max(wanted, key=lambda s: fractions[SPLITS.index(s)] / total * len(real) - counts[s])
        counts[split] += 1
    assignment: dict[str, list[Path]] = {}
    start = 0
    for split in SPLITS:
        assignment[split] = real[start : start + counts[split]]
        start += counts[split]
    return assignment


def build_splits(
    roots: Sequence[PathLike] | Mapping[str, Sequence[PathLike]] | None = None,
    *,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    **generate_kwargs: Any,
) -> dict[str, list[Task]]:
    """Build train/val/test task sets such that no repository is in two of them.

    Args:
        roots: A list of repository directories (assigned with :func:`split_roots`), an explicit mapping
            ``{"train": [...], "val": [...], "test": [...]}``, or ``None`` for the default packages
            (:data:`~environments.auto_explore.corpus.DEFAULT_SPLIT_PACKAGES`).
        fractions: Shares of the splits when ``roots`` is a list.
        seed: Seed of the split and of the generation.
        **generate_kwargs: Passed to :func:`~environments.auto_explore.generator.generate_tasks`.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``; task ids are unique across splits.

    Raises:
        ValueError: for overlapping roots or an unknown split name.

    """
    if roots is None:
        mapping: dict[str, list[Path]] = {split: [_real(r) for r in rs] for split, rs in default_split_roots().items()}
    elif isinstance(roots, Mapping):
        unknown = set(roots) - set(SPLITS)
        if unknown:
            raise ValueError(f"Unknown split(s) {sorted(unknown)}; splits are {', '.join(SPLITS)}.")
        mapping = {split: [_real(r) for r in roots.get(split, ())] for split in SPLITS}
    else:
        mapping = split_roots(roots, fractions, seed)
    _check_disjoint(mapping)
    result: dict[str, list[Task]] = {}
    used: set[str] = set()
    for split in SPLITS:
        tasks = generate_from_roots(mapping.get(split, []), seed=seed, **generate_kwargs)
        for task in tasks:
            base, number = task.task_id, 2
            while task.task_id in used:
                task.task_id = f"{base}~{number}"
                number += 1
            used.add(task.task_id)
        result[split] = tasks
    return result
