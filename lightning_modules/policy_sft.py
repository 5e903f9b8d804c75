"""Stage 2: policy SFT. The policy learns to pick the oracle's action from observation + reflection + actions."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import MeanMetric

from datamodules.prompt import recommended_action
from datamodules.rollout import Turn
from lightning_modules.action_head import ActionHead
from lightning_modules.agent import TEACHER, Agent
from lightning_modules.backbone import BackboneSpec
from lightning_modules.backbone_module import ReflectingPolicyModule
from lightning_modules.evaluation import evaluate_player
from lightning_modules.reflection import Reflector


class PolicySFTModule(ReflectingPolicyModule):
    """Cross-entropy over the admissible action labels, scored in one forward pass by :class:`ActionHead`.

    Training prompts carry the teacher's reflections, or, for a share ``own_reflections`` of the turns, the frozen
    reflection model's own analysis of the same observation, still labelled with the oracle's action: a policy that
    only ever read the teacher's (always right) recommendations learns to obey its reflection, and then neither it
    nor RL can overrule the reflection model's mistakes. Validation measures the accuracy against the oracle action on
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
        own_reflections: Share of training turns whose analysis is the reflection model's own instead of the
            teacher's (needs ``reflection`` to name a stage-1 export; ignored for ``reflection: null``, whose prompts
            have no analysis); logged as ``train/own_reflection_share``, with ``train/own_reflection_wrong``, the share
            of those that recommend another action than the oracle.
        own_reflection_temperature: 0 for the reflection model's greedy analysis (what the policy reads at test
            time; memoised per observation), or a sampling temperature for more varied, more often wrong ones.
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
        own_reflections: float = 0.0,
        own_reflection_temperature: float = 0.0,
        export_dir: str | None = None,
    ) -> None:
        super().__init__()
        if lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}.")
        if not 0.0 <= own_reflections <= 1.0:
            raise ValueError(f"own_reflections must be a share in [0, 1], got {own_reflections}.")
        if own_reflection_temperature < 0:
            raise ValueError(f"own_reflection_temperature must be >= 0 (0: greedy), got {own_reflection_temperature}.")
        self.save_hyperparameters()
        self._init_backbone(backbone, export_dir)
        self.reflection = reflection
        self.reflection_model: torch.nn.Module | None = None
        self.head: ActionHead | None = None
        self.agent: Agent | None = None
        self.own_reflector: Reflector | None = None
        self.own_generator = torch.Generator().manual_seed(0)
        self.val_loss = MeanMetric()
        self.val_accuracy = MeanMetric()

    # -- setup -----------------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        self.build_backbone()
        datamodule = self.datamodule()
        datamodule.bind(
            self.tokenizer,
            examples="policy",
            with_reflection=self.reflection is not None,
            chat_template=self.backbone_spec.chat_template,
        )
        self.build_agent()
        if self.hparams.own_reflections > 0 and self.reflection is not None:  # None: no analysis to mix
            if self.reflection_model is None:
                raise ValueError(
                    f"own_reflections={self.hparams.own_reflections} needs the reflection model that will reflect: "
                    f"set reflection to a stage-1 export (it is {self.reflection!r})."
                )
            temperature = self.hparams.own_reflection_temperature
            self.own_reflector = (
                self.agent.reflector
                if temperature == 0
                else Reflector(self.reflection_model, datamodule.encoder, do_sample=True, temperature=temperature)
            )
            self.own_generator.manual_seed(datamodule.hparams.seed)

    # -- steps ------------------------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Masked label logits ``[batch, max_actions]``."""
        return self.head(self.model, batch["input_ids"], batch["attention_mask"], batch["num_actions"])

    def shared_step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch)
        return torch.nn.functional.cross_entropy(logits, batch["targets"]), logits

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        if self.own_reflector is not None:
            batch = self._with_own_reflections(batch)
        loss, logits = self.shared_step(batch)
        size = len(batch["turns"])
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/accuracy", (logits.argmax(-1) == batch["targets"]).float().mean(), batch_size=size)
        return loss

    def eval_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Accuracy against the oracle on held-out turns, with the reflections the policy will really read."""
        if self.reflection_model is not None:  # what the policy will really read: the reflection model's analysis
            batch = self._encode(batch["turns"], self.agent.reflections(batch["turns"]))
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
            rollouts = self.hparams.val_rollouts
            evaluation = evaluate_player(self, self.datamodule(), split, rollouts, ("greedy",), self.trainer)
            size = max(1, rollouts // self.trainer.world_size)
            for name, value in evaluation.metrics.items():
                self.log(name, value, prog_bar=name == f"{split}/success_rate", sync_dist=True, batch_size=size)

    # -- prompts ----------------------------------------------------------------------------------------------------
    def _with_own_reflections(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The batch with a share ``own_reflections`` of its turns reading the reflection model's own analysis."""
        turns: list[Turn] = batch["turns"]
        own = (torch.rand(len(turns), generator=self.own_generator) < self.hparams.own_reflections).tolist()
        written = iter(self.own_reflector([t.observation for t, o in zip(turns, own, strict=True) if o]))
        reflections = [next(written) if o else t.reflection for t, o in zip(turns, own, strict=True)]
        encoded = self._encode(turns, reflections)
        mine = [(r, t) for r, t, o in zip(reflections, turns, own, strict=True) if o]
        wrong = sum(recommended_action(r, t.actions) != t.oracle for r, t in mine)
        self.log("train/own_reflection_share", len(mine) / len(turns), batch_size=len(turns))
        if mine:
            self.log("train/own_reflection_wrong", wrong / len(mine), batch_size=len(mine))
        return encoded

    def _encode(self, turns: list[Turn], reflections: list[str | None]) -> dict[str, Any]:
        """Policy prompts of the turns with these reflections, labelled with the oracle's actions, on the device."""
        batch = self.agent.encoder.policy_batch(
            [t.observation for t in turns], [t.actions for t in turns], reflections, [t.oracle for t in turns]
        )
        batch = {k: v.to(self.device) for k, v in batch.items()}
        batch["turns"] = turns
        return batch
