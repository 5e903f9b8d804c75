"""Stage 3: online RL fine-tuning of the policy while the frozen reflection model reflects at every turn."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from torchmetrics import MeanMetric

from datamodules.rl_batches import Episode, ReplayBuffer, Step, episodes_to_batch
from datamodules.rollout import EpisodeResult
from lightning_modules.action_head import ActionHead
from lightning_modules.advantages import baseline_advantages, gae_advantages
from lightning_modules.agent import Agent
from lightning_modules.backbone import BackboneSpec
from lightning_modules.backbone_module import ReflectingPolicyModule
from lightning_modules.evaluation import evaluate_player
from lightning_modules.reflection import Reflector


def _categorical_kl(logits: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean exact KL(policy || reference) over rows of masked label logits (``-inf`` outside the admissible set)."""
    admissible = torch.isfinite(logits)
    logp = torch.log_softmax(logits, -1).masked_fill(~admissible, 0.0)
    logq = torch.log_softmax(reference, -1).masked_fill(~admissible, 0.0)
    return (logp.exp() * admissible * (logp - logq)).sum(-1).mean()


class ReflectRLModule(ReflectingPolicyModule):
    """Online RLFT of the policy with single-prompt action enumeration and a frozen reflection model.

    Each training step gets the environments and ``episodes_per_step`` seeds from the
    :class:`~datamodules.RolloutDataModule` (policy mode), plays them in lock-step with the live policy
    (:meth:`rollout`: reflections generated in one batched, KV-cached call per turn and memoised, one forward pass
    per decision), keeping the exact token ids the policy saw, then recomputes the log-probabilities of the chosen
    labels on those ids with gradients and takes a policy-gradient step: REINFORCE (or PPO-clip) with a batch-mean,
    group (RLOO) or learned value (GAE) baseline, an entropy bonus, an optional KL penalty towards the starting policy
    and, as in the paper, successful episodes replayed from a buffer that a curriculum switch clears.

    Args:
        backbone: The policy (usually the stage-2 export; add ``lora`` to train an adapter only).
        reflection: A stage-1 export (the frozen reflection model), ``"teacher"`` (the environment's teacher reflects:
            an upper bound), or ``None`` for the "RL without reflection" baseline (no analysis section).
        reflect_prob: Probability that a training turn gets a reflection (the others have no analysis section); held-out
            play always reflects.
        reflection_temperature: Above 0, training rollouts read reflections that the frozen reflection model samples
            at this temperature instead of its greedy ones (held-out play stays greedy), so that training meets its
            mistakes more often and a policy that obeys them can learn when to overrule; 0 (default): greedy.
        rollout_temperature: Temperature of the behaviour policy in training rollouts (exploration).
        explore_epsilon: Share of uniform random choice mixed into the behaviour policy in training rollouts, so that
            an action the (reflection-obeying) policy gives almost no probability is still tried.
        importance_clip: With exploration, fresh steps are weighted by the importance ratio policy/behaviour,
            truncated at this value (REINFORCE; PPO's ratio is taken against the behaviour policy); ``None`` treats
            the explored steps as if the policy had taken them (REINFORCE weight 1, PPO's ratio against the policy's
            own log-probabilities): biased, but a full-size push towards an explored action that paid off, where the
            corrected weight is as small as the policy's probability of it.
        gamma: Discount of the return-to-go.
        algorithm: ``"reinforce"`` or ``"ppo"`` (clipped ratio against the acting policy's log-probabilities).
        baseline: ``"batch_mean"`` (each step's return-to-go minus the batch's mean), ``"value"`` (a linear value
            head on the policy's last hidden state, trained alongside, with generalised advantage estimation) or
            ``"group"`` (every step of an episode gets the episode's return minus the mean return of the other
            episodes of the same task, as in RLOO/GRPO; needs ``group_size`` >= 2).
        group_size: Episodes played per task (seed) in each step: the step's ``episodes_per_step`` episodes are
            ``episodes_per_step // group_size`` tasks played ``group_size`` times each.
        gae_lambda: GAE's lambda (``baseline="value"``).
        value_coef: Weight of the value head's squared error (``baseline="value"``).
        clip_eps: PPO clip range.
        entropy_coef: Weight of the entropy bonus.
        kl_coef: Weight of the exact KL divergence from the starting policy (0: no reference model is kept).
        normalize_advantages: Divide advantages by their standard deviation.
        replay_episodes: Successful episodes replayed into every update (0 disables the buffer).
        replay_capacity: Successful episodes kept.
        reflection_cache: Distinct observations whose (greedy, frozen) reflections are remembered; 0 disables.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        lr_schedule: ``"constant"`` or ``"cosine"``.
        warmup_steps: Warm-up of the cosine schedule.
        val_rollouts: Held-out episodes played (greedy and sampled) at each validation and test.
        log_transcripts: Episodes logged as TensorBoard text at each validation.
        export_dir: Where the policy is exported when ``fit`` ends.

    Example:
        >>> module = ReflectRLModule(BackboneSpec(name_or_path="runs/taxi/policy_sft/export"),
        ...                          reflection="runs/taxi/reflection_sft/export", baseline="value")
        >>> Trainer(max_steps=200, callbacks=[CurriculumCallback(stages)]).fit(module, datamodule=datamodule)
    """

    def __init__(
        self,
        backbone: BackboneSpec | None = None,
        reflection: str | None = None,
        reflect_prob: float = 1.0,
        reflection_temperature: float = 0.0,
        rollout_temperature: float = 1.0,
        explore_epsilon: float = 0.0,
        importance_clip: float | None = 1.0,
        gamma: float = 0.95,
        algorithm: str = "reinforce",
        baseline: str = "batch_mean",
        group_size: int = 1,
        gae_lambda: float = 0.95,
        value_coef: float = 0.5,
        clip_eps: float = 0.2,
        entropy_coef: float = 0.01,
        kl_coef: float = 0.0,
        normalize_advantages: bool = True,
        replay_episodes: int = 4,
        replay_capacity: int = 64,
        reflection_cache: int = 100_000,
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
        if baseline not in ("batch_mean", "value", "group"):
            raise ValueError(f"baseline must be 'batch_mean', 'value' or 'group', got {baseline!r}.")
        if group_size < 1 or (baseline == "group" and group_size < 2):
            raise ValueError(f"group_size must be >= 1 (>= 2 with baseline='group'), got {group_size}.")
        if not 0.0 <= reflect_prob <= 1.0:
            raise ValueError(f"reflect_prob must be in [0, 1], got {reflect_prob}.")
        if reflection_temperature < 0:
            raise ValueError(f"reflection_temperature must be >= 0 (0: greedy), got {reflection_temperature}.")
        if rollout_temperature <= 0:
            raise ValueError(f"rollout_temperature must be > 0, got {rollout_temperature}.")
        if not 0.0 <= explore_epsilon <= 1.0:
            raise ValueError(f"explore_epsilon must be in [0, 1], got {explore_epsilon}.")
        if importance_clip is not None and importance_clip <= 0:
            raise ValueError(f"importance_clip must be > 0 or null, got {importance_clip}.")
        self.save_hyperparameters()
        self._init_backbone(backbone, export_dir)
        self.reflection = reflection
        self.reflection_model: torch.nn.Module | None = None
        self.reference_model: torch.nn.Module | None = None
        self.value_head: torch.nn.Linear | None = None
        self.head: ActionHead | None = None
        self.agent: Agent | None = None
        self.replay = ReplayBuffer(replay_capacity)
        self.replay_generator = torch.Generator().manual_seed(0)
        self.env_steps = 0  # environment steps played by training rollouts, all ranks together
        self.rollout_success = MeanMetric(dist_sync_on_step=True)
        self.rollout_return = MeanMetric(dist_sync_on_step=True)
        self.rollout_length = MeanMetric(dist_sync_on_step=True)
        self.rollout_reflection_words = MeanMetric(dist_sync_on_step=True)

    # -- setup -----------------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.backbone_spec.name_or_path is None and self.model is None:
            raise ValueError(
                "ReflectRLModule starts from a trained policy: set backbone.name_or_path to the stage-2 export."
            )
        self.build_backbone()
        self.datamodule().bind(self.tokenizer, examples="rollout", chat_template=self.backbone_spec.chat_template)
        episodes = self.datamodule().hparams.episodes_per_step
        if episodes % self.hparams.group_size:
            raise ValueError(
                f"model.group_size={self.hparams.group_size} must divide data.episodes_per_step={episodes}: each "
                "step plays episodes_per_step // group_size tasks group_size times each."
            )
        hp = self.hparams
        self.build_agent(
            hp.reflection_cache, hp.reflection_temperature, reflect_prob=hp.reflect_prob,
            temperature=hp.rollout_temperature,
            epsilon=hp.explore_epsilon, seed=self.datamodule().hparams.seed,
        )  # fmt: skip
        self._make_value_head()
        if self.hparams.kl_coef > 0 and self.reference_model is None:
            self.reference_model = copy.deepcopy(self.model).requires_grad_(False).eval()

    def train(self, mode: bool = True):
        super().train(mode)
        # Dropout stays off in every player: the reflection and reference models are frozen, and the policy's
        # recomputed log-probabilities must equal the ones it acted with (PPO ratio 1 before the first update).
        for model in (self.model, self.reflection_model, self.reference_model):
            if model is not None:
                model.eval()
        return self

    def state_dict(self, *args, **kwargs):
        return {k: v for k, v in super().state_dict(*args, **kwargs).items() if not k.startswith("reference_model.")}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["replay_buffer"] = self.replay.state_dict()
        checkpoint["replay_generator"] = self.replay_generator.get_state()
        checkpoint["env_steps"] = self.env_steps

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        if "replay_buffer" in checkpoint:
            self.replay.load_state_dict(checkpoint["replay_buffer"])
            self.replay_generator.set_state(checkpoint["replay_generator"])
        self.env_steps = checkpoint.get("env_steps", 0)
        self._make_value_head()  # before the weights are loaded into it

    def _make_value_head(self) -> None:
        """A linear value head on the policy's last hidden state, starting at zero (``baseline="value"`` only)."""
        if self.hparams.baseline == "value" and self.value_head is None and self.model is not None:
            self.value_head = torch.nn.Linear(self.model.config.hidden_size, 1, dtype=torch.float32)
            torch.nn.init.zeros_(self.value_head.weight)
            torch.nn.init.zeros_(self.value_head.bias)

    def clear_replay(self) -> None:
        """Forget the replayed successes (a curriculum switch calls this)."""
        self.replay.clear()

    # -- acting -----------------------------------------------------------------------------------------------------
    def rollout(self, batch: dict[str, Any]) -> list[Episode]:
        """Play the item's seeds now, with this step's weights, in the datamodule's current curriculum stage.

        The datamodule's item names the environments and seeds only: Lightning fetches each batch one step ahead, so
        episodes played at fetch time would come from the policy before the last update.
        """
        size = self.hparams.group_size
        seeds = [seed for seed in batch["seeds"][: len(batch["seeds"]) // size] for _ in range(size)]
        results = self.play(batch["envs"], seeds, self.datamodule().stage, greedy=False)
        return [self.to_episode(r) for r in results]

    @staticmethod
    def to_episode(result: EpisodeResult) -> Episode:
        """Keep what training needs from a played episode."""
        steps = [
            Step(
                e["extra"]["prompt_ids"],
                e["num_actions"],
                e["choice"],
                e["extra"]["logprob"],
                e["reward"],
                e["extra"].get("behaviour_logprob"),
            )  # fmt: skip
            for e in result.transcript
        ]
        return Episode(steps, result.success, result.seed, transcript=result.transcript)

    # -- training ---------------------------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        episodes = batch["episodes"] = self.rollout(batch)  # callbacks (the curriculum) read them from the batch
        self._log_rollout(episodes)
        replayed = self.replay.sample(self.hparams.replay_episodes, self.replay_generator)
        self.replay.add(episodes)
        tensors = episodes_to_batch(episodes + replayed, self.datamodule().encoder.pad_id, len(replayed))
        tensors = {k: v.to(self.device) for k, v in tensors.items()}
        loss, stats = self.policy_loss(tensors)
        size = len(tensors["actions"])
        for name, value in stats.items():
            self.log(f"train/{name}", value, batch_size=size)
        self.log("train/loss", loss, batch_size=size)
        self.log("train/replayed_episodes", float(len(replayed)), batch_size=size)
        return loss

    def policy_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The policy-gradient loss on the rollout's token ids (one forward pass of the policy over all steps)."""
        hp = self.hparams
        inputs = (batch["input_ids"], batch["attention_mask"], batch["num_actions"])
        logits, hidden = self.head.scores(self.model, *inputs, hidden=self.value_head is not None)
        dist = torch.distributions.Categorical(logits=logits)
        logprobs = dist.log_prob(batch["actions"])
        entropy = dist.entropy().mean()
        stats: dict[str, torch.Tensor] = {"entropy": entropy.detach()}
        if self.value_head is not None:
            values = self.value_head(hidden.float()).squeeze(-1)
            advantages = gae_advantages(
                batch["rewards"], values.detach(), batch["episode_ids"], hp.gamma, hp.gae_lambda
            )
            value_loss = torch.nn.functional.mse_loss(values, advantages + values.detach())
            stats["value_loss"] = value_loss.detach()
        else:
            advantages, value_loss = baseline_advantages(batch, hp.baseline, hp.gamma), logits.new_zeros(())
        if hp.normalize_advantages and advantages.numel() > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-6)
        fresh = ~batch["replayed"]
        behaviour = torch.where(fresh, batch["behaviour_logprobs"], batch["old_logprobs"])  # replay: self-imitation
        if hp.importance_clip is None:
            behaviour = batch["old_logprobs"]
        ratio = torch.exp(logprobs - behaviour)
        if hp.algorithm == "ppo":
            clipped = ratio.clamp(1 - hp.clip_eps, 1 + hp.clip_eps)
            policy_loss = -torch.min(ratio * advantages, clipped * advantages).mean()
        else:
            weights = ratio.detach() if hp.importance_clip is None else ratio.detach().clamp(max=hp.importance_clip)
            policy_loss = -(weights * advantages * logprobs).mean()
        loss = policy_loss - hp.entropy_coef * entropy + hp.value_coef * value_loss
        if self.reference_model is not None:
            with torch.no_grad():
                reference = self.head(self.reference_model, *inputs)
            kl = _categorical_kl(logits, reference)
            loss = loss + hp.kl_coef * kl
            stats["kl"] = kl.detach()
        stats["policy_loss"] = policy_loss.detach()
        if fresh.any():
            stats["ratio"] = ratio[fresh].mean().detach()
        return loss, stats

    def _log_rollout(self, episodes: list[Episode]) -> None:
        size = len(episodes)
        self.rollout_success(torch.tensor([float(e.success) for e in episodes], device=self.device))
        self.rollout_return(torch.tensor([e.episode_return for e in episodes], device=self.device))
        self.rollout_length(torch.tensor([float(len(e.steps)) for e in episodes], device=self.device))
        self.log("rollout/success_rate", self.rollout_success, prog_bar=True, batch_size=size)
        self.log("rollout/return", self.rollout_return, batch_size=size)
        self.log("rollout/episode_length", self.rollout_length, batch_size=size)
        steps = torch.tensor(float(sum(len(e.steps) for e in episodes)), device=self.device)
        self.env_steps += int(self.trainer.strategy.reduce(steps, reduce_op="sum"))
        self.log("rollout/env_steps", float(self.env_steps), batch_size=size)
        if self.reflection is not None:  # every rank updates (a synced metric is a collective), even with no words
            texts = [t["reflection"] for e in episodes for t in e.transcript if t["reflection"] is not None]
            words = [len(text.split()) for text in texts]
            weights = torch.ones(len(words)) if words else torch.zeros(1)
            self.rollout_reflection_words(torch.tensor(words or [0.0]).to(self.device), weights.to(self.device))
            self.log("rollout/reflection_words", self.rollout_reflection_words, batch_size=size)
        reflector = self.agent.reflector if self.agent is not None else None
        if isinstance(reflector, Reflector) and reflector.cache_size > 0:
            served = reflector.hits + reflector.generated
            self.log("rollout/reflection_cache_hit_rate", reflector.hits / max(1, served), batch_size=size)

    # -- evaluation -------------------------------------------------------------------------------------------------
    def eval_step(self, batch: Any, batch_idx: int) -> None:
        self.evaluate("test" if self.trainer.testing else "val")

    def eval_epoch_end(self, split: str) -> None:
        pass  # evaluate() logs everything in its single step

    def evaluate(self, split: str) -> dict[str, float]:
        """Play the split's held-out episodes greedy and sampled, and log the metrics.

        See :func:`~lightning_modules.evaluation.evaluate_player`. Transcripts go to
        ``<log_dir>/transcripts/<split>_step<N>.jsonl`` (one file per rank when there are several).
        """
        evaluation = evaluate_player(self, self.datamodule(), split, self.hparams.val_rollouts, trainer=self.trainer)
        size = max(1, self.hparams.val_rollouts // self.trainer.world_size)
        for name, value in evaluation.metrics.items():  # already summed over the ranks: syncing averages equal values
            self.log(name, value, prog_bar=name == f"{split}/success_rate", sync_dist=True, batch_size=size)
        self._write_transcripts(split, evaluation.records)
        return evaluation.metrics

    def _write_transcripts(self, split: str, records: list[dict[str, Any]]) -> None:
        if self._trainer is None or self.trainer.sanity_checking:
            return
        directory = Path(self.trainer.log_dir or ".") / "transcripts"
        directory.mkdir(parents=True, exist_ok=True)
        rank = f"_rank{self.trainer.global_rank}" if self.trainer.world_size > 1 else ""
        path = directory / f"{split}_step{self.global_step}{rank}.jsonl"
        with path.open("w") as handle:
            for record in records:
                handle.write(json.dumps(record) + "\n")
        if not self.trainer.is_global_zero:
            return
        experiment = getattr(self.logger, "experiment", None)
        if experiment is not None and hasattr(experiment, "add_text"):
            for record in records[: self.hparams.log_transcripts]:
                lines = [
                    f"**observation**\n\n    {t['observation'].replace(chr(10), chr(10) + '    ')}\n\n"
                    f"**reflection**: {t.get('reflection')}\n\n**action**: {t['action']} (reward {t['reward']:+.2f})"
                    for t in record["turns"]
                ]
                experiment.add_text(f"{split}/transcript", "\n\n---\n\n".join(lines), global_step=self.global_step)
