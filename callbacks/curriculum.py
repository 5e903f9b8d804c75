"""The curriculum: RLFT moves through stages of rising difficulty, switched by steps or by success rate."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from datamodules.protocol import CurriculumTarget, ReplayOwner, require


@dataclass
class CurriculumStage:
    """One stage of the curriculum.

    Args:
        name: The environment's stage name (``reset(options={"stage": name})``), e.g. ``pickup`` or ``"2"``.
        steps: Leave the stage after this many training steps in it (``None``: no step limit).
        success_rate: Leave the stage once the rollout success rate over the last ``window`` steps reaches this.
        window: Training steps the success rate is averaged over.

    Example:
        >>> CurriculumStage("pickup", success_rate=0.8, window=10, steps=200)  # leave at 80% success or 200 steps
        >>> CurriculumStage("full")  # the last stage is never left
    """

    name: str
    steps: int | None = None
    success_rate: float | None = None
    window: int = 10


class CurriculumCallback(Callback):
    """Switches the datamodule's curriculum stage during RLFT and clears the module's replay buffer on a switch.

    The last stage is never left. The callback's state (current stage, steps in it, success window) is saved in
    checkpoints, so a resumed run continues in the same stage. Logs ``curriculum/stage`` (the stage's index).

    The datamodule must be a :class:`~datamodules.protocol.CurriculumTarget` (``RolloutDataModule`` is); a module that
    is a :class:`~datamodules.protocol.ReplayOwner` (``ReflectRLModule``) has its replay buffer cleared on a switch,
    since the replayed successes belong to the stage just left.

    Args:
        stages: The stages, easiest first.

    Example:
        >>> CurriculumCallback([CurriculumStage("pickup", success_rate=0.8), CurriculumStage("dropoff", steps=200),
        ...                     CurriculumStage("full")])
    """

    def __init__(self, stages: list[CurriculumStage]) -> None:
        if not stages:
            raise ValueError("A curriculum needs at least one stage.")
        self.stages = stages
        self.index = 0
        self.steps_in_stage = 0
        self.recent: deque[float] = deque(maxlen=stages[0].window)

    @property
    def stage(self) -> CurriculumStage:
        return self.stages[self.index]

    @staticmethod
    def _datamodule(trainer: L.Trainer) -> CurriculumTarget:
        return require(trainer.datamodule, CurriculumTarget, "CurriculumCallback")

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        datamodule = self._datamodule(trainer)
        known = datamodule.known_stages()
        unknown = [s.name for s in self.stages if str(s.name) not in known]
        if unknown:
            raise ValueError(
                f"Curriculum stage(s) {unknown} are unknown to {datamodule.env_id}; it knows {', '.join(known)}."
            )
        datamodule.set_stage(str(self.stage.name))

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.steps_in_stage += 1
        episodes = batch.get("episodes", []) if isinstance(batch, dict) else []
        if episodes:
            self.recent.append(sum(e.success for e in episodes) / len(episodes))
        pl_module.log("curriculum/stage", float(self.index), batch_size=max(1, len(episodes)))
        if self.index == len(self.stages) - 1:
            return
        stage = self.stage
        done_by_steps = stage.steps is not None and self.steps_in_stage >= stage.steps
        done_by_success = (
            stage.success_rate is not None
            and len(self.recent) == self.recent.maxlen
            and sum(self.recent) / len(self.recent) >= stage.success_rate
        )
        if done_by_steps or done_by_success:
            self.index += 1
            self.steps_in_stage = 0
            self.recent = deque(maxlen=self.stage.window)
            self._datamodule(trainer).set_stage(str(self.stage.name))
            if isinstance(pl_module, ReplayOwner):
                pl_module.clear_replay()

    def state_dict(self) -> dict[str, Any]:
        return {"index": self.index, "steps_in_stage": self.steps_in_stage, "recent": list(self.recent)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.index = state_dict["index"]
        self.steps_in_stage = state_dict["steps_in_stage"]
        self.recent = deque(state_dict["recent"], maxlen=self.stage.window)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._datamodule(trainer).set_stage(str(self.stage.name))  # after a resume, the restored stage
