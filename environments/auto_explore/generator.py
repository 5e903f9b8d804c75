"""Command line of the AutoExplore task generator (the logic is in :mod:`environments.auto_explore.generation`).

Usage::

    python -m environments.auto_explore.generator --packages gymnasium jsonargparse --seed 0 --out tasks.jsonl
    python -m environments.auto_explore.generator --roots path/to/repo --max-tasks 50 --out tasks.jsonl
    python -m environments.auto_explore.generator --splits-dir data/auto_explore   # default train/val/test packages

``reflect-rl make-tasks ...`` calls :func:`main` with the same arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from environments.auto_explore.corpus import DEFAULT_SPLIT_PACKAGES, package_root
from environments.auto_explore.env import DEFAULT_CAT_CHARS as DEFAULT_EVIDENCE_CHARS
from environments.auto_explore.generation import KINDS, depth_histogram, generate_from_roots, generate_tasks
from environments.auto_explore.splits import build_splits
from environments.auto_explore.tasks import Task, save_tasks
from environments.jsonl import output_file

__all__ = ["generate_tasks", "main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reflect-rl make-tasks",
        description="Generate AutoExplore tasks (JSONL) from directory trees or installed Python packages.",
    )
    source = parser.add_argument_group("where the repositories come from (default with --splits-dir: built-in split)")
    source.add_argument("--packages", nargs="+", default=[], metavar="NAME", help="installed packages, e.g. gymnasium")
    source.add_argument("--roots", nargs="+", default=[], metavar="DIR", help="directory trees")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="-", help="JSONL output file ('-': standard output; default)")
    parser.add_argument(
        "--splits-dir",
        default=None,
        help="write train.jsonl, val.jsonl and test.jsonl here instead, splitting by repository "
        f"(without --packages/--roots: {DEFAULT_SPLIT_PACKAGES})",
    )
    parser.add_argument("--fractions", nargs=3, type=float, default=(0.6, 0.2, 0.2), metavar=("TRAIN", "VAL", "TEST"))
    parser.add_argument("--max-tasks", type=int, default=200, help="tasks per repository (default 200)")
    parser.add_argument("--max-depth", type=int, default=3, help="deepest target (default 3; -1: no limit)")
    parser.add_argument("--max-actions", type=int, default=64, help="action-space size of the environment")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument(
        "--evidence-chars",
        type=int,
        default=DEFAULT_EVIDENCE_CHARS,
        help="keep only questions whose answer `cat` shows within this many characters in AutoExplore v1 (its "
        f"cat_chars; default {DEFAULT_EVIDENCE_CHARS}); 0: no such check (v0, whose cat shows the head)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry (``python -m environments.auto_explore.generator`` and ``reflect-rl make-tasks``).

    Returns:
        The exit status: 0 on success, 2 on a usage error (a message on standard error).

    """
    parser = _parser()
    args = parser.parse_args(argv)
    options = {
        "max_tasks": args.max_tasks,
        "max_depth": None if args.max_depth < 0 else args.max_depth,
        "max_actions": args.max_actions,
        "kinds": tuple(args.kinds),
        "evidence_chars": args.evidence_chars if args.evidence_chars > 0 else None,
        "dropped": Counter(),
    }
    start = time.perf_counter()
    try:
        if args.splits_dir is not None:
            _check_splits_dir(Path(args.splits_dir))
        elif args.out != "-":
            output_file(args.out, "--out")
        roots = [package_root(name) for name in args.packages] + [Path(root) for root in args.roots]
        if args.splits_dir is not None:
            splits = build_splits(roots or None, fractions=tuple(args.fractions), seed=args.seed, **options)
            for split, tasks in splits.items():
                path = save_tasks(tasks, Path(args.splits_dir) / f"{split}.jsonl")
                print(f"{split}: {len(tasks)} tasks, by depth {depth_histogram(tasks)} -> {path}", file=sys.stderr)
        else:
            if not roots:
                parser.print_usage(sys.stderr)
                print("error: give --packages and/or --roots (or --splits-dir).", file=sys.stderr)
                return 2
            tasks = generate_from_roots(roots, seed=args.seed, **options)
            if args.out == "-":
                for task in tasks:
                    sys.stdout.write(_json_line(task))
            else:
                save_tasks(tasks, args.out)
            print(
                f"{len(tasks)} tasks from {len(roots)} tree(s), by depth {depth_histogram(tasks)}"
                + ("" if args.out == "-" else f" -> {args.out}"),
                file=sys.stderr,
            )
    except (ImportError, OSError, ValueError, RecursionError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    for reason, count in sorted(options["dropped"].items()):
        print(f"dropped {count} question(s): {reason}", file=sys.stderr)
    print(f"done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def _check_splits_dir(directory: Path) -> None:
    """Refuse a ``--splits-dir`` that is a file, or whose split files cannot be written."""
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"--splits-dir {directory} is a file; give a directory (it is created if missing).")
    for split in ("train", "val", "test"):
        output_file(directory / f"{split}.jsonl", "--splits-dir")


def _json_line(task: Task) -> str:
    return json.dumps(task.to_dict(), ensure_ascii=True) + "\n"


if __name__ == "__main__":
    sys.exit(main())
