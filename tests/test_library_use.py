"""The modules, the datamodule and the callbacks in a user's own Lightning code: plain Python, no CLI, own logger."""

import csv

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger

from callbacks import CurriculumCallback, CurriculumStage, NegativeExampleCallback, PeakMemoryCallback
from datamodules import RolloutDataModule
from lightning_modules import BackboneSpec, PolicySFTModule, ReflectionSFTModule, ReflectRLModule, TinyGPT2Spec

MAZE = "examples.text_maze:TextMazeEnv"  # the user's own environment, by class path


class CountBatches(Callback):
    """A user's own callback, next to ours."""

    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches += 1


def maze_data(**kwargs) -> RolloutDataModule:
    settings = {"env_id": MAZE, "env_kwargs": {"stage": "large"}, "num_envs": 4, "batch_size": 8,
                "val_episodes": 2, "teacher_episodes": 8, "max_reflection_tokens": 8, "episodes_per_step": 4,
                "eval_stage": "large"}  # fmt: skip
    return RolloutDataModule(**{**settings, **kwargs})


def own_trainer(tmp_path, name: str, callbacks: list[Callback]) -> L.Trainer:
    return L.Trainer(max_steps=2, logger=CSVLogger(tmp_path, name=name), log_every_n_steps=1, callbacks=callbacks,
                     enable_progress_bar=False, enable_checkpointing=False, num_sanity_val_steps=0,
                     limit_val_batches=0)  # fmt: skip


def logged(trainer: L.Trainer) -> set[str]:
    with open(f"{trainer.logger.log_dir}/metrics.csv") as file:
        return {key for row in csv.DictReader(file) for key, value in row.items() if value}


def test_three_stages_with_a_users_own_trainer_logger_and_callbacks(tmp_path):
    tiny = TinyGPT2Spec(n_layer=1, n_embd=32, n_head=2, vocab_size=300, num_labels=4, tokenizer_samples=10)
    counter = CountBatches()
    stage1 = own_trainer(tmp_path, "reflection", [NegativeExampleCallback(), PeakMemoryCallback(), counter])
    stage1.fit(ReflectionSFTModule(BackboneSpec(tiny=tiny), export_dir=str(tmp_path / "r")),
               datamodule=maze_data(mistake_prob=0.2))  # fmt: skip
    assert counter.batches == 2
    assert {"train/loss", "train/negative_share", "system/peak_rss_mb"} <= logged(stage1)

    stage2 = own_trainer(tmp_path, "policy", [CountBatches()])
    policy = PolicySFTModule(BackboneSpec(name_or_path=str(tmp_path / "r")), reflection=str(tmp_path / "r"),
                             export_dir=str(tmp_path / "p"))  # fmt: skip
    stage2.fit(policy, datamodule=maze_data())
    assert "train/loss" in logged(stage2)

    curriculum = CurriculumCallback([CurriculumStage("small", steps=1), CurriculumStage("large")])
    stage3 = own_trainer(tmp_path, "rl", [curriculum, CountBatches()])
    rl = ReflectRLModule(BackboneSpec(name_or_path=str(tmp_path / "p")), reflection=str(tmp_path / "r"),
                         val_rollouts=2, export_dir=str(tmp_path / "rl"))  # fmt: skip
    data = maze_data()
    stage3.fit(rl, datamodule=data)
    assert data.stage == "large"  # the curriculum switched the user's datamodule
    assert {"rollout/success_rate", "train/loss", "curriculum/stage"} <= logged(stage3)
    assert (tmp_path / "rl" / "config.json").is_file()
