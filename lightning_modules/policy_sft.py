"""Stage 2: policy SFT. The policy learns to pick the oracle's action from observation + reflection + actions."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import MeanMetric

from datamodules.prompt import recommended_action, with_recommendation
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
    episodes greedily and logs ``val/success_rate``. ``val/follows_reflection`` (and ``test/...``) is the share of
    turns whose reflection recommends an admissible action on which the policy picks it: on the played episodes with
    ``val_rollouts > 0``, else on the held-out turns.

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
        misleading_reflections: Share of the other training turns (those reading the teacher's analysis) whose
            recommendation is swapped for a uniformly drawn other admissible action, still labelled with the
            oracle's action: negative examples for the policy, which then has to check a recommendation against the
            observation instead of copying it. Logged as ``train/misleading_share``.
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
        misleading_reflections: float = 0.0,
        export_dir: str | None = None,
    ) -> None:
        super().__init__()
        if lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}.")
        if not 0.0 <= own_reflections <= 1.0:
            raise ValueError(f"own_reflections must be a share in [0, 1], got {own_reflections}.")
        if not 0.0 <= misleading_reflections <= 1.0:
            raise ValueError(f"misleading_reflections must be a share in [0, 1], got {misleading_reflections}.")
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
        self.val_follows = MeanMetric()

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
        self.own_generator.manual_seed(datamodule.hparams.seed)
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

    # -- steps ------------------------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Masked label logits ``[batch, max_actions]``."""
        return self.head(self.model, batch["input_ids"], batch["attention_mask"], batch["num_actions"])

    def shared_step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch)
        return torch.nn.functional.cross_entropy(logits, batch["targets"]), logits

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        reads_analysis = self.reflection is not None  # None: prompts without an analysis section, nothing to mix
        if reads_analysis and (self.own_reflector is not None or self.hparams.misleading_reflections > 0):
            batch = self._with_training_reflections(batch)
        loss, logits = self.shared_step(batch)
        size = len(batch["turns"])
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/accuracy", (logits.argmax(-1) == batch["targets"]).float().mean(), batch_size=size)
        return loss

    def eval_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Accuracy against the oracle on held-out turns, with the reflections the policy will really read."""
        turns: list[Turn] = batch["turns"]
        reflections = [t.reflection if self.reflection is not None else None for t in turns]
        if self.reflection_model is not None:  # what the policy will really read: the reflection model's analysis
            reflections = self.agent.reflections(turns)
            batch = self._encode(turns, reflections)
        loss, logits = self.shared_step(batch)
        self.val_loss.update(loss, weight=len(batch["targets"]))
        self.val_accuracy.update((logits.argmax(-1) == batch["targets"]).float())
        choices = logits.argmax(-1).tolist()
        for turn, reflection, choice in zip(turns, reflections, choices, strict=True):
            recommended = recommended_action(reflection, turn.actions) if reflection else None
            if recommended is not None:
                self.val_follows.update(float(choice == recommended))

    def eval_epoch_end(self, split: str) -> None:
        """Log the held-out metrics under ``split/``, playing ``val_rollouts`` held-out episodes if asked."""
        self.log(f"{split}/loss", self.val_loss.compute())
        self.log(f"{split}/accuracy", self.val_accuracy.compute(), prog_bar=True)
        turn_follows = self.val_follows.compute() if self.val_follows.update_count else None
        self.val_loss.reset()
        self.val_accuracy.reset()
        self.val_follows.reset()
        if self.hparams.val_rollouts == 0 and turn_follows is not None:
            self.log(f"{split}/follows_reflection", turn_follows)
        if self.hparams.val_rollouts > 0 and not self.trainer.sanity_checking:
            rollouts = self.hparams.val_rollouts
            evaluation = evaluate_player(self, self.datamodule(), split, rollouts, ("greedy",), self.trainer)
            size = max(1, rollouts // self.trainer.world_size)
            for name, value in evaluation.metrics.items():
                self.log(name, value, prog_bar=name == f"{split}/success_rate", sync_dist=True, batch_size=size)

    # -- prompts ----------------------------------------------------------------------------------------------------
    def _with_training_reflections(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The batch re-encoded with the analyses the options ask for.

        A share ``own_reflections`` of the turns read the reflection model's own analysis, and a share
        ``misleading_reflections`` of the others a teacher analysis that recommends a wrong action.
        """
        turns: list[Turn] = batch["turns"]
        reflections = [t.reflection for t in turns]
        own = [False] * len(turns)
        if self.own_reflector is not None:
            own = (torch.rand(len(turns), generator=self.own_generator) < self.hparams.own_reflections).tolist()
            written = iter(self.own_reflector([t.observation for t, o in zip(turns, own, strict=True) if o]))
            reflections = [next(written) if o else r for r, o in zip(reflections, own, strict=True)]
            mine = [(r, t) for r, t, o in zip(reflections, turns, own, strict=True) if o]
            self.log("train/own_reflection_share", len(mine) / len(turns), batch_size=len(turns))
            if mine:
                wrong = sum(recommended_action(r, t.actions) != t.oracle for r, t in mine)
                self.log("train/own_reflection_wrong", wrong / len(mine), batch_size=len(mine))
        if self.hparams.misleading_reflections > 0:
            draws = torch.rand(len(turns), generator=self.own_generator).tolist()
            misled = 0
            for i, turn in enumerate(turns):
                if own[i] or draws[i] >= self.hparams.misleading_reflections or turn.reflection is None:
                    continue
                others = [a for a in range(len(turn.actions)) if a != turn.oracle]
                if others:
                    wrong = others[int(torch.randint(len(others), (1,), generator=self.own_generator))]
                    swapped = with_recommendation(turn.reflection, turn.actions, wrong)
                    if swapped is not None:
                        reflections[i], misled = swapped, misled + 1
            self.log("train/misleading_share", misled / len(turns), batch_size=len(turns))
        return self._encode(turns, reflections)

    def _encode(self, turns: list[Turn], reflections: list[str | None]) -> dict[str, Any]:
        """Policy prompts of the turns with these reflections, labelled with the oracle's actions, on the device."""
        batch = self.agent.encoder.policy_batch(
            [t.observation for t in turns], [t.actions for t in turns], reflections, [t.oracle for t in turns]
        )
        batch = {k: v.to(self.device) for k, v in batch.items()}
        batch["turns"] = turns
        return batch
