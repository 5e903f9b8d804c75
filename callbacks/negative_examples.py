"""Negative examples: the teacher errs on purpose so that the reflections after its mistakes are corrective."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


class NegativeExampleCallback(Callback):
    """Sets (and optionally schedules) the teacher's probability of a deliberate wrong action.

    The datamodule's behaviour policy takes a wrong action with this probability (one of the environment's
    ``info["mistake_actions"]`` where it lists them, actions that do not end the episode; else a random non-oracle
    action); the reflection at the next turn then names the mistake and the way back. The policy target is always the
    oracle action, so mistakes teach recovery without teaching wrong actions. With probability 0 the data has no
    negative examples (the paper's ablation). Logs ``train/mistake_prob`` and ``train/negative_share`` (the share of
    turns in each batch where the teacher erred).

    Args:
        probability: The probability from the start of training (used when ``schedule`` is not given).
        schedule: ``{global_step: probability}`` points, interpolated linearly and held after the last, e.g.
            ``{0: 0.3, 1000: 0.1}``.

    Example:
        >>> trainer = Trainer(callbacks=[NegativeExampleCallback(schedule={0: 0.3, 500: 0.1})])
    """

    def __init__(self, probability: float = 0.2, schedule: dict[int, float] | None = None) -> None:
        points = sorted((int(step), float(p)) for step, p in (schedule or {0: probability}).items())
        for step, p in points:
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"Mistake probability {p} at step {step} is not in [0, 1].")
            if step < 0:
                raise ValueError(f"Schedule steps must be >= 0, got {step}.")
        self.points = points

    def probability_at(self, step: int) -> float:
        """The scheduled probability at ``step``."""
        if step <= self.points[0][0]:
            return self.points[0][1]
        for (s0, p0), (s1, p1) in zip(self.points, self.points[1:], strict=False):
            if step <= s1:
                return p0 + (p1 - p0) * (step - s0) / (s1 - s0)
        return self.points[-1][1]

    @staticmethod
    def _datamodule(trainer: L.Trainer):
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "set_mistake_prob"):
            raise RuntimeError("NegativeExampleCallback needs a datamodule with set_mistake_prob (RolloutDataModule).")
        return datamodule

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._datamodule(trainer).set_mistake_prob(self.probability_at(trainer.global_step))

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._datamodule(trainer).set_mistake_prob(self.probability_at(trainer.global_step))

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        size = len(batch.get("turns", ())) or None
        pl_module.log("train/mistake_prob", self._datamodule(trainer).mistake_prob, batch_size=size)
        if "negative_share" in batch:
            pl_module.log("train/negative_share", float(batch["negative_share"]), batch_size=size)
