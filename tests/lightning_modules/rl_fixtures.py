"""Tiny players and data shared by the stage-3 tests (see conftest.py for the ``exports`` fixture)."""

from pathlib import Path

import lightning as L

from datamodules import RolloutDataModule
from lightning_modules import BackboneSpec, PolicySFTModule, ReflectionSFTModule, TinyGPT2Spec

TINY = TinyGPT2Spec(n_layer=1, n_embd=32, n_head=2, vocab_size=400, num_labels=6, tokenizer_samples=20)


def data(**kwargs) -> RolloutDataModule:
    settings = {"env_kwargs": {"observation_format": "compact"}, "num_envs": 4, "batch_size": 4, "val_episodes": 2,
                "max_reflection_tokens": 12, "episodes_per_step": 4, "eval_stage": "full"}  # fmt: skip
    return RolloutDataModule(**{**settings, **kwargs})


def trainer(tmp_path, steps, **kwargs) -> L.Trainer:
    settings = {"logger": L.pytorch.loggers.TensorBoardLogger(tmp_path), "enable_progress_bar": False,
                "enable_model_summary": False, "num_sanity_val_steps": 0, "limit_val_batches": 0}  # fmt: skip
    return L.Trainer(max_steps=steps, **{**settings, **kwargs})


def make_exports(root: Path) -> tuple[Path, Path]:
    """Stage-1 and stage-2 exports of a tiny GPT-2 after two steps each."""
    trainer(root, 2).fit(ReflectionSFTModule(BackboneSpec(tiny=TINY), export_dir=str(root / "r")), datamodule=data())
    policy = PolicySFTModule(BackboneSpec(name_or_path=str(root / "r")), export_dir=str(root / "p"))
    trainer(root, 2).fit(policy, datamodule=data())
    return root / "r", root / "p"
