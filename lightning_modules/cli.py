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
    convert-gguf    convert a GGUF model (default: SmolLM2-135M-Instruct of `make smollm2`) into a Hugging Face folder
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator

import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException

#: Errors that come from bad input or a configuration that cannot run here (a missing export, a file that is not a
#: regular file, unreadable JSON or YAML, a strategy without its GPU or package, an unknown curriculum stage, ...):
#: the console script prints their message on one line, not a traceback.
CONFIG_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # also json.JSONDecodeError and UnicodeDecodeError
    OSError,
    ImportError,
    RecursionError,
    MisconfigurationException,
    argparse.ArgumentError,
    yaml.YAMLError,
)
#: Options of the argparse subcommands that name files to read, checked (regular files only) before they run.
INPUT_FILE_OPTIONS: dict[str, tuple[str, ...]] = {
    "export-dataset": ("--config",),
    "evaluate-llm": ("--config", "--compare"),
}
#: This project's top-level packages (bound before the working directory goes on ``sys.path``).
OWN_PACKAGES = ("callbacks", "datamodules", "environments", "lightning_modules")
#: Set to keep the traceback of a configuration error.
TRACEBACK_VARIABLE = "REFLECT_RL_TRACEBACK"


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


def _import_tasks(argv: list[str]) -> int:
    from environments.auto_explore.paper_tasks import main

    return main(argv)


def _export_dataset(argv: list[str]) -> int:
    from datamodules.export import main

    return main(argv)


def _evaluate_llm(argv: list[str]) -> int:
    from lightning_modules.llm_agent import main

    return main(argv)


def _check_env(argv: list[str]) -> int:
    from environments.check import main

    return main(argv)


def _convert_gguf(argv: list[str]) -> int:
    from lightning_modules.pretrained import main

    return main(argv)


def _lightning(argv: list[str]) -> int:
    from lightning_modules.lightning_cli import run_lightning_cli

    run_lightning_cli(argv)
    return 0


def _check_input_files(argv: list[str], options: tuple[str, ...]) -> None:
    """Check that each value of ``options`` in ``argv`` (``--option value`` or ``--option=value``) is a regular file.

    Raises:
        FileNotFoundError, IsADirectoryError or OSError: naming the option and the path.
    """
    from environments.jsonl import regular_file

    for position, item in enumerate(argv):
        option, has_value, value = item.partition("=")
        if option not in options:
            continue
        if not has_value:
            if position + 1 >= len(argv):
                continue  # the parser reports the missing value
            value = argv[position + 1]
        regular_file(value, option)


def _one_line(text: str) -> str:
    """``text`` on one line (a multi-line message joined with spaces)."""
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _import_hint(text: str) -> str:
    """For a module that could not be imported, where it was looked for."""
    if "No module named" not in text:
        return ""
    return (
        f" Modules are looked up in the working directory {os.getcwd()} (first, as with python -m) and in the "
        "installed packages: run reflect-rl from the directory that holds the module's package, or install it."
    )


def _describe(error: BaseException) -> str:
    """One line that says what went wrong, for an error of :data:`CONFIG_ERRORS`."""
    if isinstance(error, RecursionError):
        text = f"input nested too deeply to read ({error}); flatten it."
    elif isinstance(error, UnicodeDecodeError):
        text = f"a file is not UTF-8 text ({error}); save it as UTF-8."
    elif isinstance(error, json.JSONDecodeError):
        text = f"not valid JSON: {error}."
    else:
        text = str(error) or type(error).__name__
    cause = error.__cause__ if isinstance(error.__cause__, ImportError) else error
    if isinstance(cause, ImportError):
        text += _import_hint(str(cause))
    return _one_line(text)


def _guarded(command: str, run: Callable[[], int]) -> int:
    """Run a subcommand; an error from bad input is one line on standard error (exit status 1), not a traceback.

    With ``REFLECT_RL_TRACEBACK=1`` in the environment the error is raised, traceback and all.
    """
    try:
        with _one_line_usage_errors():
            return run()
    except BrokenPipeError:  # the reader of standard output went away (``| head``): nothing to report
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except CONFIG_ERRORS as error:
        if os.environ.get(TRACEBACK_VARIABLE):
            raise
        print(
            f"reflect-rl {command}: error: {_describe(error)} ({TRACEBACK_VARIABLE}=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


def _usage_error(parser: argparse.ArgumentParser, message: str) -> None:
    """Print a parser's usage error as one line and exit with status 2."""
    prog = parser.prog.replace(" [options]", "")
    print(f"{prog}: error: {_one_line(message)}{_import_hint(message)} (see {prog} --help)", file=sys.stderr)
    raise SystemExit(2)


@contextlib.contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    """Make a command-line parser's usage error one line on standard error (exit status 2) instead of usage + error.

    Applies to the ``argparse`` parsers of the subcommands and to the ``jsonargparse`` parser of LightningCLI while
    a subcommand runs (``--help`` is unchanged; with ``REFLECT_RL_TRACEBACK=1`` the parsers behave as usual).
    """
    if os.environ.get(TRACEBACK_VARIABLE):
        yield
        return
    original = argparse.ArgumentParser.error

    def argparse_error(self: argparse.ArgumentParser, message: str) -> None:
        _usage_error(self, message)

    patched: list[tuple[type, Callable]] = [(argparse.ArgumentParser, original)]
    argparse.ArgumentParser.error = argparse_error  # type: ignore[method-assign]
    try:
        import jsonargparse
    except ImportError:  # pragma: no cover - installed with lightning[pytorch-extra]
        jsonargparse = None
    if jsonargparse is not None:
        jsonargparse_original = jsonargparse.ArgumentParser.error

        def jsonargparse_error(self, message: str, ex: Exception | None = None) -> None:
            if not getattr(self, "exit_on_error", True):  # the parser raises, for a caller that catches it
                jsonargparse_original(self, message, ex)
            _usage_error(self, message)

        patched.append((jsonargparse.ArgumentParser, jsonargparse_original))
        jsonargparse.ArgumentParser.error = jsonargparse_error
    try:
        yield
    finally:
        for cls, method in patched:
            cls.error = method  # type: ignore[method-assign]


def _working_directory_on_path() -> None:
    """Put the working directory first on ``sys.path``, as ``python -m`` does.

    A class path (``package.module:ClassName``, or a LightningCLI ``class_path``) of the user's own module then
    resolves from the directory reflect-rl is run in, with the console script as with ``python -m``. This project's
    own packages are imported first, so that a folder of the same name there (``environments/``, say) cannot take
    their place.
    """
    cwd = os.getcwd()
    if any(entry in ("", cwd) or os.path.abspath(entry) == cwd for entry in sys.path):
        return
    for package in OWN_PACKAGES:
        importlib.import_module(package)
    sys.path.insert(0, cwd)


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
    "convert-gguf": _convert_gguf,
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
    _working_directory_on_path()
    handler = COMMANDS[command]

    def run() -> int:
        _check_input_files(rest, INPUT_FILE_OPTIONS.get(command, ()))
        return handler(argv if handler is _lightning else rest)

    return _guarded(command, run)


if __name__ == "__main__":
    sys.exit(main())
