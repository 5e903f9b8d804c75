"""The two players acting together: reflect on each turn, then pick one shown action in one forward pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from datamodules.encoding import PromptEncoder
from datamodules.rollout import EpisodeResult, Turn, play_episodes
from lightning_modules.action_head import ActionHead
from lightning_modules.reflection import Reflector

#: ``reflection`` value of the policy stages meaning "the policy reads the teacher's reflections" instead of a
#: reflection model's (or none): in training, those of the SFT data; in play, the environment's rule-based teacher's
#: (``env.unwrapped.teacher_reflection()``). It answers *whose* reflections the policy reads. It is not
#: :data:`datamodules.llm.teacher.RULES` (``"rules"``), the ``data.teacher`` value that answers *which* teacher writes
#: the SFT data's reflections (the rule-based one, or an LLM); the two options are set independently.
TEACHER = "teacher"


class Agent:
    """A policy that reads a reflection (or none) and chooses among the admissible actions of a batch of turns.

    The agent keeps what each choice rests on: the exact prompt ids the policy read, the chosen label's
    log-probability and the reflection, so that RLFT can recompute log-probabilities on the same ids.

    Args:
        policy: The policy model (a causal LM; the live, training model when used inside a LightningModule).
        head: The action head over the policy's label tokens.
        encoder: The prompt encoder (tokenizer and budgets).
        reflector: The reflection model's player, :data:`TEACHER` (the turns carry the teacher's reflections: in
            play, the environment's rule-based teacher's), or ``None`` (prompts without an analysis section).
        reflect_prob: Probability that a training turn gets a reflection at all (the others have no analysis
            section); held-out play always reflects. Drawn from the agent's own seeded generator.
        temperature: Temperature of the behaviour policy when exploring (training rollouts).
        epsilon: Share of uniform random choice mixed into the behaviour policy when exploring.
        seed: Seed of the agent's generator (reflection thinning and exploration).
        explore_reflector: Writes the reflections of exploring turns (training rollouts) instead of ``reflector``,
            e.g. the same frozen model sampling at a temperature, so that training meets the reflection model's
            mistakes more often than its greedy reflections show them; held-out play always uses ``reflector``.

    When exploring, the choice is drawn from the behaviour policy
    ``mu = (1 - epsilon) * softmax(logits / temperature) + epsilon * uniform`` and each turn keeps both
    ``logprob`` (of the policy itself) and ``behaviour_logprob`` (of ``mu``), so that RL can correct for the
    difference.

    Example:
        >>> agent = Agent(policy, ActionHead(tokenizer, 6), PromptEncoder(tokenizer), Reflector(reflection_model, ...))
        >>> results = agent.play(envs, seeds=range(100), stage="full", greedy=True)
    """

    def __init__(
        self,
        policy: nn.Module,
        head: ActionHead,
        encoder: PromptEncoder,
        reflector: Reflector | str | None = None,
        reflect_prob: float = 1.0,
        temperature: float = 1.0,
        epsilon: float = 0.0,
        seed: int = 0,
        explore_reflector: Reflector | None = None,
    ) -> None:
        if isinstance(reflector, str) and reflector != TEACHER:
            raise ValueError(f"reflector must be a Reflector, {TEACHER!r} or None, got {reflector!r}.")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}.")
        self.policy, self.head, self.encoder = policy, head, encoder
        self.reflector = reflector
        self.explore_reflector = explore_reflector
        self.reflect_prob = reflect_prob
        self.temperature, self.epsilon = temperature, epsilon
        self.generator = torch.Generator().manual_seed(seed)

    def reflections(self, turns: Sequence[Turn], explore: bool = False) -> list[str | None]:
        """The analysis each turn's policy prompt shows (``None``: no analysis section).

        Args:
            turns: The turns to reflect on.
            explore: Training rollouts: give each turn a reflection only with probability ``reflect_prob``, written
                by ``explore_reflector`` where there is one.
        """
        if self.reflector is None:
            return [None] * len(turns)
        keep = [True] * len(turns)
        if explore and self.reflect_prob < 1:
            keep = (torch.rand(len(turns), generator=self.generator) < self.reflect_prob).tolist()
        if self.reflector == TEACHER:
            return [t.reflection if k else None for t, k in zip(turns, keep, strict=True)]
        reflector = self.explore_reflector if explore and self.explore_reflector is not None else self.reflector
        written = iter(reflector([t.observation for t, k in zip(turns, keep, strict=True) if k]))
        return [next(written) if k else None for k in keep]

    def encode(self, turns: Sequence[Turn], reflections: Sequence[str | None]) -> dict[str, torch.Tensor]:
        """Policy prompts of the turns as a left-padded batch on the policy's device."""
        batch = self.encoder.policy_batch([t.observation for t in turns], [t.actions for t in turns], reflections)
        device = next(self.policy.parameters()).device
        return {k: v.to(device) for k, v in batch.items()}

    @torch.no_grad()
    def act(
        self, turns: Sequence[Turn], greedy: bool = False, explore: bool = False
    ) -> tuple[list[int], list[dict[str, Any]]]:
        """Reflect, then choose one shown action per turn, all turns in one forward pass of the policy.

        Args:
            turns: The turns to act on.
            greedy: Take the most probable action (held-out play); else sample.
            explore: Sample from the behaviour policy (``temperature``, ``epsilon``), thin the reflections
                (``reflect_prob``) and let ``explore_reflector`` write them: training rollouts.

        Returns:
            The chosen shown-action indices and, per turn, ``prompt_ids`` (the exact unpadded ids the policy read),
            ``logprob`` (of the choice under the policy), ``behaviour_logprob`` (under the distribution it was drawn
            from) and ``reflection``.
        """
        reflections = self.reflections(turns, explore=explore)
        batch = self.encode(turns, reflections)
        logits = self.head(self.policy, batch["input_ids"], batch["attention_mask"], batch["num_actions"]).float()
        policy = torch.log_softmax(logits, -1)
        behaviour = self.behaviour(logits) if explore and not greedy else policy
        if greedy:
            choices = policy.argmax(-1)
        else:
            choices = torch.multinomial(behaviour.exp().cpu(), 1, generator=self.generator).squeeze(-1)
            choices = choices.to(logits.device)
        logprobs = policy.gather(-1, choices[:, None]).squeeze(-1).tolist()
        behaviour_logprobs = behaviour.gather(-1, choices[:, None]).squeeze(-1).tolist()
        mask = batch["attention_mask"].bool()
        extras = [
            {"prompt_ids": batch["input_ids"][row][mask[row]].tolist(), "logprob": logprobs[row],
             "behaviour_logprob": behaviour_logprobs[row], "reflection": text}
            for row, text in enumerate(reflections)
        ]  # fmt: skip
        return choices.tolist(), extras

    def behaviour(self, logits: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of the exploring behaviour policy for masked label logits (``-inf``: inadmissible)."""
        logp = torch.log_softmax(logits / self.temperature, -1)
        if self.epsilon > 0:
            admissible = torch.isfinite(logits)
            uniform = admissible / admissible.sum(-1, keepdim=True)
            logp = torch.log((1 - self.epsilon) * logp.exp() + self.epsilon * uniform)
        return logp

    def play(
        self,
        envs: Sequence[gym.Env],
        seeds: Sequence[int],
        stage: str | None = None,
        greedy: bool = False,
        explore: bool = False,
    ) -> list[EpisodeResult]:
        """Play one episode per seed, the environments in lock-step; the policy is put in eval mode meanwhile."""
        was_training = self.policy.training
        self.policy.eval()
        try:
            return play_episodes(
                envs, list(seeds), lambda turns: self.act(turns, greedy, explore), stage=stage,
                teacher_reflections=self.reflector == TEACHER,
            )  # fmt: skip
        finally:
            self.policy.train(was_training)
