"""Stage 2: policy SFT. The policy learns to pick the oracle's action from observation + reflection + actions."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import MeanMetric

from datamodules.rollout import Turn
from lightning_modules.action_head import ActionHead
from lightning_modules.agent import TEACHER, Agent
from lightning_modules.backbone import BackboneSpec
from lightning_modules.backbone_module import ReflectingPolicyModule


class PolicySFTModule(ReflectingPolicyModule):
    """Cross-entropy over the admissible action labels, scored in one forward pass by :class:`ActionHead`.

    Training prompts carry the teacher's reflections. Validation measures the accuracy against the oracle action on
    held-out turns with the reflections the policy will really get: the reflection model's when ``reflection`` names
    one, the teacher's for ``"teacher"``, none for ``None``; with ``val_rollouts > 0`` it also plays held-out
    episodes greedily and logs ``val/success_rate``.

    Args:
        backbone: The policy model.
        reflection: ``"teacher"``, a path to a stage-1 export (frozen reflection model), or ``None`` for prompts
            without an analysis section (the "no reflection" baseline; training prompts then have none either).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        lr_schedule: ``"cosine"`` (warm-up, then decay to 10% at ``trainer.max_steps``) or ``"constant"``.
        warmup_steps: Linear warm-up steps of the cosine schedule.
        val_rollouts: Held-out episodes played at each validation (0: none).
        export_dir: Where the trained policy is exported when ``fit`` ends (default ``<log_dir>/export``).

    Example:
        >>> module = PolicySFTModule(reflection="runs/taxi/reflection/export", val_rollouts=32)
        >>> Trainer(max_steps=300).fit(module, datamodule=RolloutDataModule(mistake_prob=0.2))
    """

    def __init__(
        self,
        backbone: BackboneSpec | None = None,
        reflection: str | None = TEACHER,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: str = "cosine",
        warmup_steps: int = 0,
        val_rollouts: int = 0,
        export_dir: str | None = None,
    ) -> None:
        super().__init__()
        if lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}.")
        self.save_hyperparameters()
        self._init_backbone(backbone or BackboneSpec(), export_dir)
        self.reflection = reflection
        self.reflection_model: torch.nn.Module | None = None
        self.head: ActionHead | None = None
        self.agent: Agent | None = None
        self.val_loss = MeanMetric()
        self.val_accuracy = MeanMetric()

    # -- setup -----------------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        self.build_backbone()
        datamodule = self.datamodule()
        datamodule.bind(self.tokenizer, examples="policy", with_reflection=self.reflection is not None)
        self.build_agent()

    # -- steps ------------------------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Masked label logits ``[batch, max_actions]``."""
        return self.head(self.model, batch["input_ids"], batch["attention_mask"], batch["num_actions"])

    def shared_step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch)
        return torch.nn.functional.cross_entropy(logits, batch["targets"]), logits

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, logits = self.shared_step(batch)
        size = len(batch["turns"])
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/accuracy", (logits.argmax(-1) == batch["targets"]).float().mean(), batch_size=size)
        return loss

    def eval_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Accuracy against the oracle on held-out turns, with the reflections the policy will really read."""
        if self.reflection_model is not None:  # what the policy will really read: the reflection model's analysis
            batch = self._encode(batch["turns"], with_targets=True)
        loss, logits = self.shared_step(batch)
        self.val_loss.update(loss, weight=len(batch["targets"]))
        self.val_accuracy.update((logits.argmax(-1) == batch["targets"]).float())

    def eval_epoch_end(self, split: str) -> None:
        """Log the held-out metrics under ``split/``, playing ``val_rollouts`` held-out episodes if asked."""
        self.log(f"{split}/loss", self.val_loss.compute())
        self.log(f"{split}/accuracy", self.val_accuracy.compute(), prog_bar=True)
        self.val_loss.reset()
        self.val_accuracy.reset()
        if self.hparams.val_rollouts > 0 and not self.trainer.sanity_checking:
            results = self.play(self.datamodule().eval_seeds(split, self.hparams.val_rollouts), split=split)
            self.log(f"{split}/success_rate", sum(r.success for r in results) / len(results), prog_bar=True)
            self.log(f"{split}/return", sum(r.episode_return for r in results) / len(results))
            self.log(f"{split}/episode_length", sum(r.length for r in results) / len(results))

    # -- acting -----------------------------------------------------------------------------------------------------
    def _encode(self, turns: list[Turn], with_targets: bool = False) -> dict[str, Any]:
        reflections = self.agent.reflections(turns)
        targets = [t.oracle for t in turns] if with_targets else None
        batch = self.agent.encoder.policy_batch(
            [t.observation for t in turns], [t.actions for t in turns], reflections, targets
        )
        batch = {k: v.to(self.device) for k, v in batch.items()}
        batch["turns"] = turns
        return batch

    def play(self, seeds: list[int], greedy: bool = True, split: str = "val"):
        """Play one held-out episode per seed of ``split`` with this policy; return :class:`EpisodeResult` s."""
        datamodule = self.datamodule()
        envs = datamodule.make_eval_envs(split, min(len(seeds), datamodule.hparams.num_envs))
        try:
            with self.full_weights():
                return self.agent.play(envs, seeds, datamodule.evaluation_stage, greedy)
        finally:
            for env in envs:
                env.close()
