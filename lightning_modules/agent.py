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

#: ``reflection`` value of the policy stages meaning "the environment's teacher reflects".
TEACHER = "teacher"


class Agent:
    """A policy that reads a reflection (or none) and chooses among the admissible actions of a batch of turns.

    The agent keeps what each choice rests on: the exact prompt ids the policy read, the chosen label's
    log-probability and the reflection, so that RLFT can recompute log-probabilities on the same ids.

    Args:
        policy: The policy model (a causal LM; the live, training model when used inside a LightningModule).
        head: The action head over the policy's label tokens.
        encoder: The prompt encoder (tokenizer and budgets).
        reflector: The reflection model's player, :data:`TEACHER` (the turns carry the teacher's reflections), or
            ``None`` (prompts without an analysis section).
        reflect_prob: Probability that a turn gets a reflection at all (the others have no analysis section).

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
    ) -> None:
        if isinstance(reflector, str) and reflector != TEACHER:
            raise ValueError(f"reflector must be a Reflector, {TEACHER!r} or None, got {reflector!r}.")
        self.policy, self.head, self.encoder = policy, head, encoder
        self.reflector = reflector
        self.reflect_prob = reflect_prob

    def reflections(self, turns: Sequence[Turn]) -> list[str | None]:
        """The analysis each turn's policy prompt shows (``None``: no analysis section)."""
        if self.reflector is None:
            return [None] * len(turns)
        keep = [True] * len(turns) if self.reflect_prob >= 1 else (torch.rand(len(turns)) < self.reflect_prob).tolist()
        if self.reflector == TEACHER:
            return [t.reflection if k else None for t, k in zip(turns, keep, strict=True)]
        written = iter(self.reflector([t.observation for t, k in zip(turns, keep, strict=True) if k]))
        return [next(written) if k else None for k in keep]

    def encode(self, turns: Sequence[Turn], reflections: Sequence[str | None]) -> dict[str, torch.Tensor]:
        """Policy prompts of the turns as a left-padded batch on the policy's device."""
        batch = self.encoder.policy_batch([t.observation for t in turns], [t.actions for t in turns], reflections)
        device = next(self.policy.parameters()).device
        return {k: v.to(device) for k, v in batch.items()}

    @torch.no_grad()
    def act(self, turns: Sequence[Turn], greedy: bool = False) -> tuple[list[int], list[dict[str, Any]]]:
        """Reflect, then choose one shown action per turn, all turns in one forward pass of the policy.

        Returns:
            The chosen shown-action indices and, per turn, ``prompt_ids`` (the exact unpadded ids the policy read),
            ``logprob`` (of the choice) and ``reflection``.
        """
        reflections = self.reflections(turns)
        batch = self.encode(turns, reflections)
        dist = self.head.distribution(self.policy, batch["input_ids"], batch["attention_mask"], batch["num_actions"])
        choices = dist.probs.argmax(-1) if greedy else dist.sample()
        logprobs = dist.log_prob(choices).tolist()
        mask = batch["attention_mask"].bool()
        extras = [
            {"prompt_ids": batch["input_ids"][row][mask[row]].tolist(), "logprob": logprobs[row], "reflection": text}
            for row, text in enumerate(reflections)
        ]
        return choices.tolist(), extras

    def play(
        self, envs: Sequence[gym.Env], seeds: Sequence[int], stage: str | None = None, greedy: bool = False
    ) -> list[EpisodeResult]:
        """Play one episode per seed, the environments in lock-step; the policy is put in eval mode meanwhile."""
        was_training = self.policy.training
        self.policy.eval()
        try:
            return play_episodes(
                envs, list(seeds), lambda turns: self.act(turns, greedy), stage=stage,
                teacher_reflections=self.reflector == TEACHER,
            )  # fmt: skip
        finally:
            self.policy.train(was_training)
