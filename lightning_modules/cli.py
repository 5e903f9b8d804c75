"""The ``reflect-rl`` console script.

Subcommands:
    fit             train a stage from a YAML config (LightningCLI): reflect-rl fit --config configs/...yaml
    validate        validate a stage from a config (and a checkpoint: --ckpt_path)
    test            test a stage from a config (and a checkpoint: --ckpt_path)
    pipeline        stage 1, 2 and 3 and the held-out test of an environment's tiny profile: reflect-rl pipeline --help
    demo            play each environment with its oracle and teacher, print the transcripts
    play            play an environment by hand, seeing exactly what the models read
    make-tasks      generate AutoExplore tasks (JSONL) from directory trees or installed packages
    import-tasks    convert the paper's AutoExplore tasks (root, filename, question, optimal_path) into our format
    export-dataset  write a config's teacher rollout (rule-based or LLM teacher) as a JSONL SFT dataset
    evaluate-llm    play held-out episodes with a model behind an OpenAI-compatible endpoint, print the table
    check-env       check an environment (a gymnasium id or module:Class) against the contract, report in words
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


def _guarded(command: str, run) -> int:
    """Run a subcommand's ``main``; a configuration error is one line on standard error, not a traceback."""
    try:
        return run()
    except CONFIG_ERRORS as error:
        if os.environ.get("REFLECT_RL_TRACEBACK"):
            raise
        print(f"reflect-rl {command}: error: {error}", file=sys.stderr)
        print("(set REFLECT_RL_TRACEBACK=1 to see the traceback)", file=sys.stderr)
        return 1


def _import_tasks(argv: list[str]) -> int:
    from environments.auto_explore.paper_tasks import main

    return _guarded("import-tasks", lambda: main(argv))


def _export_dataset(argv: list[str]) -> int:
    from datamodules.dataset import main

    return _guarded("export-dataset", lambda: main(argv))


def _evaluate_llm(argv: list[str]) -> int:
    from lightning_modules.llm_agent import main

    return _guarded("evaluate-llm", lambda: main(argv))


def _check_env(argv: list[str]) -> int:
    from environments.check import main

    return _guarded("check-env", lambda: main(argv))


def _lightning(argv: list[str]) -> int:
    from lightning_modules.lightning_cli import run_lightning_cli

    def run() -> int:
        run_lightning_cli(argv)
        return 0

    return _guarded(argv[0], run)


COMMANDS = {
    "fit": _lightning,
    "validate": _lightning,
    "test": _lightning,
    "pipeline": _pipeline,
    "demo": _demo,
    "play": _play,
    "make-tasks": _make_tasks,
    "import-tasks": _import_tasks,
    "export-dataset": _export_dataset,
    "evaluate-llm": _evaluate_llm,
    "check-env": _check_env,
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
