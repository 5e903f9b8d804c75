"""The LightningCLI behind ``reflect-rl fit|validate|test``: any of our LightningModules with a RolloutDataModule."""

from __future__ import annotations

import sys

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI

from datamodules.rollout_datamodule import RolloutDataModule

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


class ReflectRLCLI(LightningCLI):
    """LightningCLI that checks, before anything is built, that the requested hardware exists on this machine."""

    def before_instantiate_classes(self) -> None:
        config = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        accelerator = str(config.trainer.get("accelerator", "auto")).lower()
        if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
            raise ValueError(
                f"trainer.accelerator is {accelerator!r} but this machine has no CUDA GPU (torch.cuda.is_available() "
                "is False, or torch is a CPU build). Use a tiny CPU profile (configs/<env>/*.yaml without gpu_), "
                "or override with --trainer.accelerator=cpu --trainer.precision=32-true."
            )


def run_lightning_cli(argv: list[str]) -> LightningCLI:
    """Run ``fit``, ``validate`` or ``test`` with the arguments that follow ``reflect-rl``.

    The model is any LightningModule named by ``class_path`` (``lightning_modules.ReflectionSFTModule``, ...); the
    data section configures a :class:`RolloutDataModule`.
    """
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
