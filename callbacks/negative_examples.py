"""Negative examples: the teacher errs on purpose so that the reflections after its mistakes are corrective."""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn

from datamodules.protocol import MistakeTarget, require


class NegativeExampleCallback(Callback):
    """Schedules changes of the teacher's probability of a deliberate wrong action, and logs the negative examples.

    The probability belongs to the datamodule (``data.mistake_prob``, read and changed through
    :class:`~datamodules.protocol.MistakeTarget`): its behaviour policy takes a wrong action with it (one of the
    environment's ``info["mistake_actions"]`` where it lists them, actions that do not end the episode; else a random
    non-oracle action), and the reflection at the next turn then names the mistake and the way back. The policy target
    is always the oracle action, so mistakes teach recovery without teaching wrong actions. With probability 0 the
    data has no negative examples (the paper's ablation). This callback only changes the probability over training
    steps, when given a ``schedule``.

    A schedule needs training to stream new teacher episodes (``data.teacher_episodes: null``): a fixed budget of
    ``teacher_episodes`` is played once when training starts, with the probability in force then, and a ``dataset``
    or the RL stage plays no teacher episodes at all. If the schedule would change the probability later, the callback
    says so once with a warning and leaves the probability alone after the start.

    Logs ``train/negative_share`` (the share of turns in each batch where the teacher erred) and, while training
    streams new episodes, ``train/mistake_prob`` (the probability in force).

    Args:
        probability: Deprecated: set ``data.mistake_prob`` instead. It must equal the datamodule's value (it no longer
            overrides it); a different value is an error.
        schedule: ``{global_step: probability}`` points, interpolated linearly and held after the last, e.g.
            ``{0: 0.3, 1000: 0.1}``. Before the first point the datamodule's own ``mistake_prob`` holds.

    Example:
        >>> trainer = Trainer(callbacks=[NegativeExampleCallback(schedule={0: 0.3, 500: 0.1})])
    """

    def __init__(self, probability: float | None = None, schedule: dict[int, float] | None = None) -> None:
        if probability is not None:
            if schedule is not None:
                raise ValueError("Give NegativeExampleCallback a schedule, not a probability as well.")
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"Mistake probability {probability} is not in [0, 1].")
            warnings.warn(
                f"NegativeExampleCallback(probability={probability}) is deprecated: the datamodule owns the mistake "
                f"probability. Set data.mistake_prob={probability} and drop the callback's probability (keep the "
                "callback for its train/negative_share log, or give it a schedule).",
                FutureWarning,
                stacklevel=2,
            )
        points = sorted((int(step), float(p)) for step, p in (schedule or {}).items())
        for step, p in points:
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"Mistake probability {p} at step {step} is not in [0, 1].")
            if step < 0:
                raise ValueError(f"Schedule steps must be >= 0, got {step}.")
        self.probability = probability
        self.points = points
        self._scheduling = False
        self._streaming = False
        self._warned = False

    def probability_at(self, step: int) -> float | None:
        """The scheduled probability at ``step``, or ``None`` before the first point (no schedule: always ``None``)."""
        if not self.points or step < self.points[0][0]:
            return None
        for (s0, p0), (s1, p1) in zip(self.points, self.points[1:], strict=False):
            if step <= s1:
                return p0 + (p1 - p0) * (step - s0) / (s1 - s0)
        return self.points[-1][1]

    def _changes_after(self, step: int) -> bool:
        """Whether the schedule gives another probability at some step after ``step``."""
        later = [p for s, p in self.points if s > step]
        return bool(later) and any(p != self.probability_at(step) for p in later)

    @staticmethod
    def _datamodule(trainer: L.Trainer) -> MistakeTarget:
        return require(trainer.datamodule, MistakeTarget, "NegativeExampleCallback")

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        datamodule = self._datamodule(trainer)
        if self.probability is not None and self.probability != datamodule.mistake_prob:
            raise ValueError(
                f"NegativeExampleCallback(probability={self.probability}) contradicts the datamodule's "
                f"mistake_prob={datamodule.mistake_prob}: the datamodule owns it. Set data.mistake_prob and drop the "
                "callback's probability."
            )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = self._datamodule(trainer)
        step = trainer.global_step
        self._streaming = datamodule.streams_teacher_turns
        self._scheduling = bool(self.points) and self._streaming
        start = self.probability_at(step)
        if start is not None:  # a fixed budget of teacher episodes is played with it, right after this hook
            datamodule.set_mistake_prob(start)
        if self.points and not self._streaming and self._changes_after(step) and not self._warned:
            self._warned = True
            rank_zero_warn(
                f"NegativeExampleCallback: the schedule {dict(self.points)} changes nothing after step {step}: "
                "training does not stream new teacher episodes (a fixed teacher_episodes budget is played once at the "
                f"start, with mistake_prob={datamodule.mistake_prob}; a dataset or the RL stage plays none). Set "
                "data.teacher_episodes=null to schedule the probability, or drop the schedule."
            )

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        probability = self.probability_at(trainer.global_step) if self._scheduling else None
        if probability is not None:
            self._datamodule(trainer).set_mistake_prob(probability)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        size = len(batch.get("turns", ())) or None
        if self._streaming:
            pl_module.log("train/mistake_prob", self._datamodule(trainer).mistake_prob, batch_size=size)
        if "negative_share" in batch:
            pl_module.log("train/negative_share", float(batch["negative_share"]), batch_size=size)
