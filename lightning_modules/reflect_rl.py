"""Stage 3: online RL fine-tuning of the policy while the frozen reflection model reflects at every turn."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torchmetrics import MeanMetric

from datamodules.rl_batches import Episode, ReplayBuffer, Step, episodes_to_batch
from datamodules.rollout import EpisodeResult, Turn, play_episodes
from lightning_modules.action_head import ActionHead
from lightning_modules.backbone import BackboneSpec
from lightning_modules.backbone_module import TEACHER, ReflectingPolicyModule
from lightning_modules.reflection import generate_reflections


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate."""
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


class ReflectRLModule(ReflectingPolicyModule):
    """Online RLFT of the policy with single-prompt action enumeration and a frozen reflection model.

    Each training step the :class:`~datamodules.RolloutDataModule` (policy mode) plays ``episodes_per_step`` episodes
    in lock-step with the live policy (reflections generated in one batched, KV-cached call per turn, one forward pass
    per decision) and yields them with the exact token ids the policy saw. ``training_step`` recomputes the
    log-probabilities of the chosen labels on those ids with gradients and takes a REINFORCE step with a batch-mean
    baseline (or PPO-clip), an entropy bonus and, as in the paper, successful episodes replayed from a buffer that a
    curriculum switch clears.

    Args:
        backbone: The policy (usually the stage-2 export; add ``lora`` to train an adapter only).
        reflection: A stage-1 export (the frozen reflection model), ``"teacher"`` (the environment's teacher reflects:
            an upper bound), or ``None`` for the "RL without reflection" baseline (no analysis section).
        reflect_prob: Probability that a turn gets a reflection (the others have no analysis section).
        gamma: Discount of the return-to-go.
        algorithm: ``"reinforce"`` or ``"ppo"`` (clipped ratio against the acting policy's log-probabilities).
        clip_eps: PPO clip range.
        entropy_coef: Weight of the entropy bonus.
        normalize_advantages: Divide advantages by their standard deviation.
        replay_episodes: Successful episodes replayed into every update (0 disables the buffer).
        replay_capacity: Successful episodes kept.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        lr_schedule: ``"constant"`` or ``"cosine"``.
        warmup_steps: Warm-up of the cosine schedule.
        val_rollouts: Held-out episodes played (greedy and sampled) at each validation and test.
        log_transcripts: Episodes logged as TensorBoard text at each validation.
        export_dir: Where the policy is exported when ``fit`` ends.
    """

    def __init__(
        self,
        backbone: BackboneSpec | None = None,
        reflection: str | None = None,
        reflect_prob: float = 1.0,
        gamma: float = 0.95,
        algorithm: str = "reinforce",
        clip_eps: float = 0.2,
        entropy_coef: float = 0.01,
        normalize_advantages: bool = True,
        replay_episodes: int = 4,
        replay_capacity: int = 64,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
        warmup_steps: int = 0,
        val_rollouts: int = 64,
        log_transcripts: int = 2,
        export_dir: str | None = None,
    ) -> None:
        super().__init__()
        if algorithm not in ("reinforce", "ppo"):
            raise ValueError(f"algorithm must be 'reinforce' or 'ppo', got {algorithm!r}.")
        if not 0.0 <= reflect_prob <= 1.0:
            raise ValueError(f"reflect_prob must be in [0, 1], got {reflect_prob}.")
        self.save_hyperparameters()
        self._init_backbone(backbone or BackboneSpec(), export_dir)
        self.reflection = reflection
        self.reflection_model: torch.nn.Module | None = None
        self.head: ActionHead | None = None
        self.replay = ReplayBuffer(replay_capacity)
        self.replay_generator = torch.Generator().manual_seed(0)
        self.rollout_success = MeanMetric()
        self.rollout_return = MeanMetric()
        self.rollout_length = MeanMetric()
        self.rollout_reflection_tokens = MeanMetric()

    # -- setup -----------------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.backbone_spec.name_or_path is None:
            raise ValueError(
                "ReflectRLModule starts from a trained policy: set backbone.name_or_path to the stage-2 export."
            )
        self.build_backbone()
        datamodule = self.datamodule()
        datamodule.bind(self.tokenizer, examples="rollout", actor=self)
        self.head = ActionHead(self.tokenizer, datamodule.max_actions)
        self.load_reflection_model()

    def train(self, mode: bool = True):
        super().train(mode)
        # Dropout stays off in both players: the reflection model is frozen, and the policy's recomputed
        # log-probabilities must equal the ones it acted with (PPO ratio 1 before the first update).
        for model in (self.model, self.reflection_model):
            if model is not None:
                model.eval()
        return self

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["replay_buffer"] = self.replay.state_dict()
        checkpoint["replay_generator"] = self.replay_generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        if "replay_buffer" in checkpoint:
            self.replay.load_state_dict(checkpoint["replay_buffer"])
            self.replay_generator.set_state(checkpoint["replay_generator"])

    def clear_replay(self) -> None:
        """Forget the replayed successes (a curriculum switch calls this)."""
        self.replay.clear()

    # -- acting -----------------------------------------------------------------------------------------------------
    def _reflections(self, turns: list[Turn]) -> list[str | None]:
        if self.reflection is None:
            return [None] * len(turns)
        keep = torch.rand(len(turns)) < self.hparams.reflect_prob
        if self.reflection == TEACHER:
            return [t.reflection if k else None for t, k in zip(turns, keep.tolist(), strict=True)]
        chosen = [t for t, k in zip(turns, keep.tolist(), strict=True) if k]
        written = iter(
            generate_reflections(self.reflection_model, self.datamodule().encoder, [t.observation for t in chosen])
        )
        return [next(written) if k else None for k in keep.tolist()]

    @torch.no_grad()
    def act(self, turns: list[Turn], greedy: bool = False) -> tuple[list[int], list[dict[str, Any]]]:
        """Reflect, then pick one shown action per turn in one forward pass; return choices and what they rest on.

        The extras of each turn hold the exact prompt ids, the chosen label's log-probability and the reflection.
        """
        encoder = self.datamodule().encoder
        reflections = self._reflections(turns)
        batch = encoder.policy_batch([t.observation for t in turns], [t.actions for t in turns], reflections)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        dist = self.head.distribution(self.model, batch["input_ids"], batch["attention_mask"], batch["num_actions"])
        choices = dist.probs.argmax(-1) if greedy else dist.sample()
        logprobs = dist.log_prob(choices)
        extras = []
        for row, reflection in enumerate(reflections):
            ids = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()
            extras.append({"prompt_ids": ids, "logprob": float(logprobs[row]), "reflection": reflection})
        return choices.tolist(), extras

    def play(self, envs, seeds: list[int], stage: str | None, greedy: bool) -> list[EpisodeResult]:
        """Play one episode per seed with the live policy."""
        was_training = self.training
        self.eval()
        try:
            return play_episodes(
                envs, seeds, lambda turns: self.act(turns, greedy), stage=stage,
                teacher_reflections=self.reflection == TEACHER,
            )  # fmt: skip
        finally:
            self.train(was_training)

    @staticmethod
    def to_episode(result: EpisodeResult) -> Episode:
        """Keep what training needs from a played episode."""
        steps = [
            Step(e["extra"]["prompt_ids"], e["num_actions"], e["choice"], e["extra"]["logprob"], e["reward"])
            for e in result.transcript
        ]
        return Episode(steps, result.success, result.seed, transcript=result.transcript)

    # -- training ---------------------------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        episodes: list[Episode] = batch["episodes"]
        self._log_rollout(episodes)
        replayed = self.replay.sample(self.hparams.replay_episodes, self.replay_generator)
        self.replay.add(episodes)
        tensors = episodes_to_batch(
            episodes + replayed, self.datamodule().encoder.pad_id, self.hparams.gamma, len(replayed)
        )
        tensors = {k: v.to(self.device) for k, v in tensors.items()}
        loss, stats = self.policy_loss(tensors)
        size = len(tensors["actions"])
        for name, value in stats.items():
            self.log(f"train/{name}", value, batch_size=size)
        self.log("train/loss", loss, batch_size=size)
        self.log("train/replayed_episodes", float(len(replayed)), batch_size=size)
        return loss

    def policy_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """REINFORCE (or PPO-clip) loss with a batch-mean baseline and an entropy bonus, on the rollout's token ids."""
        dist = self.head.distribution(self.model, batch["input_ids"], batch["attention_mask"], batch["num_actions"])
        logprobs = dist.log_prob(batch["actions"])
        entropy = dist.entropy().mean()
        advantages = batch["returns"] - batch["returns"].mean()
        if self.hparams.normalize_advantages and advantages.numel() > 1:
            advantages = advantages / (advantages.std() + 1e-6)
        ratio = torch.exp(logprobs - batch["old_logprobs"])
        if self.hparams.algorithm == "ppo":
            clipped = ratio.clamp(1 - self.hparams.clip_eps, 1 + self.hparams.clip_eps)
            policy_loss = -torch.min(ratio * advantages, clipped * advantages).mean()
        else:
            policy_loss = -(advantages * logprobs).mean()
        loss = policy_loss - self.hparams.entropy_coef * entropy
        fresh = ~batch["replayed"]
        stats = {"entropy": entropy.detach(), "policy_loss": policy_loss.detach()}
        if fresh.any():
            stats["ratio"] = ratio[fresh].mean().detach()
        return loss, stats

    def _log_rollout(self, episodes: list[Episode]) -> None:
        size = len(episodes)
        self.rollout_success(torch.tensor([float(e.success) for e in episodes]))
        self.rollout_return(torch.tensor([e.episode_return for e in episodes]))
        self.rollout_length(torch.tensor([float(len(e.steps)) for e in episodes]))
        self.log("rollout/success_rate", self.rollout_success, prog_bar=True, batch_size=size)
        self.log("rollout/return", self.rollout_return, batch_size=size)
        self.log("rollout/episode_length", self.rollout_length, batch_size=size)
        reflected = [len(t["reflection"].split()) for e in episodes for t in e.transcript if t.get("reflection")]
        if reflected:
            self.rollout_reflection_tokens(torch.tensor(reflected, dtype=torch.float32))
            self.log("rollout/reflection_words", self.rollout_reflection_tokens, batch_size=size)

    # -- evaluation -------------------------------------------------------------------------------------------------
    def eval_step(self, batch: Any, batch_idx: int) -> None:
        self.evaluate("test" if self.trainer.testing else "val")

    def eval_epoch_end(self, split: str) -> None:
        pass  # evaluate() logs everything in its single step

    def evaluate(self, split: str) -> dict[str, float]:
        """Play the split's held-out episodes greedy and sampled; log success rate with a 95% interval, return, length.

        Transcripts go to ``<log_dir>/transcripts/<split>_step<N>.jsonl``.
        """
        datamodule = self.datamodule()
        count = self.hparams.val_rollouts
        seeds = datamodule.eval_seeds(split, count)
        envs = datamodule.make_eval_envs(split, min(count, datamodule.hparams.num_envs))
        metrics: dict[str, float] = {}
        records = []
        for mode, greedy in (("greedy", True), ("sampled", False)):
            results = self.play(envs, seeds, datamodule.evaluation_stage, greedy)
            wins = sum(r.success for r in results)
            low, high = wilson_interval(wins, len(results))
            metrics.update(
                {
                    f"{split}/success_rate" + ("" if greedy else "_sampled"): wins / len(results),
                    f"{split}/success_rate{'' if greedy else '_sampled'}_ci_low": low,
                    f"{split}/success_rate{'' if greedy else '_sampled'}_ci_high": high,
                    f"{split}/return{'' if greedy else '_sampled'}": sum(r.episode_return for r in results)
                    / len(results),
                    f"{split}/episode_length{'' if greedy else '_sampled'}": sum(r.length for r in results)
                    / len(results),
                }
            )
            records += [
                {
                    "mode": mode,
                    "seed": r.seed,
                    "success": r.success,
                    "return": r.episode_return,
                    "turns": [{k: v for k, v in t.items() if k != "extra"} for t in r.transcript],
                }
                for r in results
            ]
        for env in envs:
            env.close()
        for name, value in metrics.items():
            self.log(name, value, prog_bar=name == f"{split}/success_rate", sync_dist=True, batch_size=count)
        self._write_transcripts(split, records)
        return metrics

    def _write_transcripts(self, split: str, records: list[dict[str, Any]]) -> None:
        if self._trainer is None or not self.trainer.is_global_zero or self.trainer.sanity_checking:
            return
        directory = Path(self.trainer.log_dir or ".") / "transcripts"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{split}_step{self.global_step}.jsonl"
        with path.open("w") as handle:
            for record in records:
                handle.write(json.dumps(record) + "\n")
        experiment = getattr(self.logger, "experiment", None)
        if experiment is not None and hasattr(experiment, "add_text"):
            for record in records[: self.hparams.log_transcripts]:
                lines = [
                    f"**observation**\n\n    {t['observation'].replace(chr(10), chr(10) + '    ')}\n\n"
                    f"**reflection**: {t.get('reflection')}\n\n**action**: {t['action']} (reward {t['reward']:+.2f})"
                    for t in record["turns"]
                ]
                experiment.add_text(f"{split}/transcript", "\n\n---\n\n".join(lines), global_step=self.global_step)
