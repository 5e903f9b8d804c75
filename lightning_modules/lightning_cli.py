"""The LightningCLI behind ``reflect-rl fit|validate|test``: any of our LightningModules with a RolloutDataModule."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI

from datamodules.rollout_datamodule import RolloutDataModule
from environments.jsonl import regular_file

#: Options whose value must be a regular file (a named pipe would block the parser forever).
CONFIG_OPTIONS = ("--config", "-c")
#: ``ckpt_path`` values that name no file.
SPECIAL_CHECKPOINTS = ("last", "best", "hpc", "registry")
#: Model options that name an export of an earlier stage (or a hub model), checked before anything is built.
EXPORT_OPTIONS = {"backbone.name_or_path": ("backbone", "name_or_path"), "reflection": ("reflection",)}

#: Trainer settings every stage shares unless its config says otherwise: TensorBoard logs under ``runs/``, steps
#: (not epochs) since the data streams, validation every ``val_check_interval`` steps.
TRAINER_DEFAULTS = {
    "accelerator": "auto",
    "devices": 1,
    "check_val_every_n_epoch": None,
    "logger": {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": "runs", "name": "default"},
    },
}


def _lookup(node: Any, *keys: str) -> Any:
    """``node[keys[0]][keys[1]]...`` through namespaces, dicts and objects; ``None`` where a key is missing."""
    for key in keys:
        if node is None:
            return None
        node = node.get(key) if hasattr(node, "get") else getattr(node, key, None)
    return node


def check_export(option: str, value: Any) -> None:
    """Check that a model option naming a local directory names an export (``config.json`` or an adapter).

    Hub names, ``None`` and ``"teacher"`` are left to the module.

    Raises:
        FileNotFoundError: naming the option, the directory and what to do.
    """
    from lightning_modules.backbone import _is_local
    from lightning_modules.pretrained import is_gguf

    if not isinstance(value, str) or value in ("teacher", "None", "null", "") or not _is_local(value):
        return
    path = Path(os.path.expanduser(value))
    if is_gguf(value) and path.is_file():
        return
    flag = f"--model.init_args.{option}"
    if not path.is_dir():
        raise FileNotFoundError(
            f"{flag}: {value} does not exist. Run the stage that exports it first, or point {flag} at an export of "
            "an earlier stage (a directory with config.json or adapter_config.json); a converted GGUF model "
            "(SmolLM2) comes from `reflect-rl convert-gguf` (docs/smollm2.md)."
        )
    if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        raise FileNotFoundError(
            f"{flag}: {value} holds no model (no config.json or adapter_config.json). Point {flag} at the export "
            "directory of an earlier stage."
        )


def check_checkpoint(value: Any) -> None:
    """Check that ``ckpt_path``, when it names a local file, is a regular file (a named pipe would block).

    Raises:
        FileNotFoundError, IsADirectoryError or OSError: naming ``--ckpt_path``.
    """
    if not value or not isinstance(value, (str, os.PathLike)):
        return
    text = os.fspath(value)
    if text in SPECIAL_CHECKPOINTS or text.startswith("registry:") or "://" in text:
        return
    regular_file(text, "--ckpt_path")


def check_argument_files(argv: Sequence[str]) -> None:
    """Refuse, before parsing, a ``--config`` that is not a regular file and any value naming a named pipe or device.

    The parser would read such a file and block forever on a named pipe.

    Raises:
        FileNotFoundError, IsADirectoryError or OSError: naming the option and the path.
    """
    items = list(argv)
    for position, item in enumerate(items):
        option, has_value, value = item.partition("=")
        if not has_value:
            if not option.startswith("-") or position + 1 >= len(items):
                continue
            value = items[position + 1]
        if option in CONFIG_OPTIONS:
            if os.path.lexists(value) or not any(mark in value for mark in ":{\n"):  # else an inline YAML config
                regular_file(value, option)
        elif value and not value.startswith("-"):
            try:
                is_special = os.path.exists(value) and not (os.path.isfile(value) or os.path.isdir(value))
            except (OSError, ValueError):  # a value too long or with a NUL byte names no file
                is_special = False
            if is_special:
                regular_file(value, option)


def _run_dirs(trainer: L.Trainer) -> list[Path]:
    """The directories the logger will create for this run (its version directory, then missing parents).

    Only TensorBoard and CSV loggers, whose log directory is known without creating anything.
    """
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    logger = trainer.logger
    if not isinstance(logger, (TensorBoardLogger, CSVLogger)) or not trainer.is_global_zero:
        return []
    created, path = [], Path(logger.log_dir).absolute()
    while not path.exists() and path != path.parent:
        created.append(path)
        path = path.parent
    return created


def _holds_no_data(events: Path) -> bool:
    """Whether a TensorBoard event file holds nothing but its header (no scalar, text, graph or hparams)."""
    try:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

        return all(event.WhichOneof("what") == "file_version" for event in EventFileLoader(str(events)).Load())
    except Exception:  # unreadable: keep it
        return False


def _unused(directory: Path) -> bool:
    """Whether ``directory`` holds only what a run writes before its first step.

    That is: nothing, the run's ``config.yaml``, TensorBoard event files without data, and such directories (no
    symbolic links).
    """
    if directory.is_symlink() or not directory.is_dir():
        return False
    for entry in directory.iterdir():
        if entry.is_symlink():
            return False
        if entry.is_dir():
            if not _unused(entry):
                return False
        elif entry.name != "config.yaml" and not (
            entry.name.startswith("events.out.tfevents.") and _holds_no_data(entry)
        ):
            return False
    return True


def _remove_created(created: Sequence[Path]) -> None:
    """After a failed run: remove its version directory if unused, then the parents it created while they are empty."""
    if not created:
        return
    version, parents = created[0], created[1:]
    if version.exists():
        if not _unused(version):
            return
        shutil.rmtree(version)
    for parent in parents:  # another run may have started in them meanwhile: only empty ones go
        try:
            parent.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return


class ReflectRLCLI(LightningCLI):
    """LightningCLI that checks, before anything is built, what a run needs, and leaves no empty run behind.

    Before the trainer is built it checks that the requested hardware exists on this machine, that the exports named
    by ``model.init_args.backbone.name_or_path`` and ``model.init_args.reflection`` exist and that ``ckpt_path`` is a
    regular file, so that a bad option fails before the logger creates ``<save_dir>/<name>/version_N``. When the run
    fails anyway, the version directory (and parents) it created are removed if they hold no results: only the saved
    ``config.yaml`` and TensorBoard event files without data.
    """

    def _set_seed(self) -> None:
        self.check_runnable()  # before seeding, which logs a line: a bad option is then the only line printed
        super()._set_seed()

    def before_instantiate_classes(self) -> None:
        self.check_runnable()

    def check_runnable(self) -> None:
        """Check the hardware, the exports and the checkpoint the parsed configuration names.

        Raises:
            ValueError: for a GPU accelerator on a machine without one.
            FileNotFoundError, IsADirectoryError or OSError: for a missing export or a checkpoint that is not a
                regular file, naming the option.
        """
        subcommand = self.config.get("subcommand")
        config = self.config.get(subcommand, self.config) if subcommand else self.config
        accelerator = str(config.trainer.get("accelerator", "auto")).lower()
        if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
            raise ValueError(
                f"trainer.accelerator is {accelerator!r} but this machine has no CUDA GPU (torch.cuda.is_available() "
                "is False, or torch is a CPU build). Use a tiny CPU profile (configs/<env>/*.yaml without gpu_), "
                "or override with --trainer.accelerator=cpu --trainer.precision=32-true."
            )
        init_args = _lookup(config, "model", "init_args")
        for option, keys in EXPORT_OPTIONS.items():
            check_export(option, _lookup(init_args, *keys))
        check_checkpoint(_lookup(config, "ckpt_path"))

    def _run_subcommand(self, subcommand: str) -> None:
        created = _run_dirs(self.trainer)
        try:
            super()._run_subcommand(subcommand)
        except BaseException:
            _remove_created(created)
            raise


def run_lightning_cli(argv: list[str]) -> LightningCLI:
    """Run ``fit``, ``validate`` or ``test`` with the arguments that follow ``reflect-rl``.

    The model is any LightningModule named by ``class_path`` (``lightning_modules.ReflectionSFTModule``, ...); the
    data section configures a :class:`RolloutDataModule`.

    Raises:
        FileNotFoundError, IsADirectoryError or OSError: for a ``--config`` that is not a regular file, or a value that
            names a named pipe or a device (checked before parsing, which would block on one).
    """
    check_argument_files(argv)
    return ReflectRLCLI(
        model_class=L.LightningModule,
        datamodule_class=RolloutDataModule,
        subclass_mode_model=True,
        subclass_mode_data=False,
        trainer_defaults=TRAINER_DEFAULTS,
        seed_everything_default=0,
        args=None if argv == sys.argv[1:] else argv,  # LightningCLI warns when given its own command line
        parser_kwargs={"prog": "reflect-rl"},
        save_config_kwargs={"overwrite": True},
    )
