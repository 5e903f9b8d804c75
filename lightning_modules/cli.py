"""The ``reflect-rl`` console script.

Subcommands:
    fit         train a stage from a YAML config (LightningCLI): reflect-rl fit --config configs/...yaml
    validate    validate a stage from a config (and a checkpoint: --ckpt_path)
    test        test a stage from a config (and a checkpoint: --ckpt_path)
    pipeline    stage 1, 2 and 3 and the held-out test of an environment's tiny profile: reflect-rl pipeline --help
    demo        play each environment with its oracle and teacher, print the transcripts
    play        play an environment by hand, seeing exactly what the models read
    make-tasks  generate AutoExplore tasks (JSONL) from directory trees or installed packages
"""

from __future__ import annotations

import os
import sys

from lightning.fabric.utilities.exceptions import MisconfigurationException

#: Errors that mean "this configuration cannot run here" (a missing export, a strategy without its GPU or package,
#: an unknown curriculum stage, ...): the console script prints their message, not a traceback.
CONFIG_ERRORS = (ValueError, FileNotFoundError, OSError, ImportError, MisconfigurationException)


def _demo(argv: list[str]) -> int:
    from datamodules.demo import main

    return main(argv)


def _play(argv: list[str]) -> int:
    from datamodules.play import main

    return main(argv)


def _pipeline(argv: list[str]) -> int:
    from lightning_modules.pipeline import main

    return main(argv)


def _make_tasks(argv: list[str]) -> int:
    from environments.auto_explore.generator import main

    return main(argv)


def _lightning(argv: list[str]) -> int:
    from lightning_modules.lightning_cli import run_lightning_cli

    try:
        run_lightning_cli(argv)
    except CONFIG_ERRORS as error:
        if os.environ.get("REFLECT_RL_TRACEBACK"):
            raise
        print(f"reflect-rl {argv[0]}: error: {error}", file=sys.stderr)
        print("(set REFLECT_RL_TRACEBACK=1 to see the traceback)", file=sys.stderr)
        return 1
    return 0


COMMANDS = {
    "fit": _lightning,
    "validate": _lightning,
    "test": _lightning,
    "pipeline": _pipeline,
    "demo": _demo,
    "play": _play,
    "make-tasks": _make_tasks,
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``reflect-rl <command> ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"reflect-rl: unknown command {command!r}; choose one of {', '.join(COMMANDS)}.", file=sys.stderr)
        return 2
    return COMMANDS[command](argv if COMMANDS[command] is _lightning else rest)


if __name__ == "__main__":
    sys.exit(main())
