"""On-policy rollouts as training batches: exact token ids, rewards per step, and the replay buffer of successes."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Step:
    """One decision of a rollout, as the policy saw and made it.

    Attributes:
        prompt_ids: The exact token ids of the policy prompt (unpadded); training scores these, never re-tokenised text.
        num_actions: Admissible actions.
        action: The chosen label index.
        logprob: Its log-probability under the policy that acted.
        reward: The reward that followed.
        behaviour_logprob: Its log-probability under the distribution it was drawn from (``None``: the policy's own,
            no exploration).
    """

    prompt_ids: list[int]
    num_actions: int
    action: int
    logprob: float
    reward: float
    behaviour_logprob: float | None = None


@dataclass
class Episode:
    """A finished episode of decisions with its outcome."""

    steps: list[Step]
    success: bool
    seed: int = 0
    transcript: list[dict[str, Any]] = field(default_factory=list)

    @property
    def episode_return(self) -> float:
        return sum(step.reward for step in self.steps)


class ReplayBuffer:
    """The paper's buffer of successful episodes, replayed next to fresh rollouts; cleared on a curriculum switch.

    Args:
        capacity: Episodes kept (oldest dropped first).
    """

    def __init__(self, capacity: int = 64) -> None:
        self.episodes: deque[Episode] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self.episodes)

    def add(self, episodes: Sequence[Episode]) -> None:
        """Keep the successful ones."""
        self.episodes.extend(e for e in episodes if e.success)

    def sample(self, count: int, generator: torch.Generator) -> list[Episode]:
        """Up to ``count`` episodes, uniformly without replacement."""
        if not self.episodes or count <= 0:
            return []
        order = torch.randperm(len(self.episodes), generator=generator)[:count].tolist()
        return [self.episodes[i] for i in order]

    def clear(self) -> None:
        self.episodes.clear()

    def state_dict(self) -> dict[str, Any]:
        """The kept episodes as plain lists and numbers (a checkpoint loads with ``torch.load(weights_only=True)``)."""
        episodes = [
            {"seed": e.seed, "success": e.success, "steps": [dataclasses.astuple(step) for step in e.steps]}
            for e in self.episodes
        ]
        return {"capacity": self.episodes.maxlen, "episodes": episodes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        episodes = [
            Episode([Step(*step) for step in e["steps"]], success=e["success"], seed=e["seed"])
            for e in state["episodes"]
        ]
        self.episodes = deque(episodes, maxlen=state["capacity"])


def episodes_to_batch(episodes: Sequence[Episode], pad_id: int, replayed: int = 0) -> dict[str, Any]:
    """Lay the episodes' steps end to end as one left-padded batch (the advantages are the loss's business).

    Returns:
        ``input_ids``, ``attention_mask``, ``num_actions``, ``actions``, ``old_logprobs``, ``behaviour_logprobs``
        (equal to ``old_logprobs`` where the policy acted without exploring), ``rewards``, ``episode_ids`` (index of
        each step's episode), ``replayed`` (``True`` on steps of replayed episodes, which are the last ``replayed``
        episodes) and ``episode_groups`` (per episode: its seed for the fresh episodes, which groups the episodes of
        one task, ``-1`` for the replayed ones).
    """
    steps = [step for episode in episodes for step in episode.steps]
    width = max(len(step.prompt_ids) for step in steps)
    input_ids = torch.full((len(steps), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(steps), width), dtype=torch.long)
    for row, step in enumerate(steps):
        input_ids[row, width - len(step.prompt_ids) :] = torch.tensor(step.prompt_ids, dtype=torch.long)
        attention_mask[row, width - len(step.prompt_ids) :] = 1
    episode_ids = torch.tensor([i for i, e in enumerate(episodes) for _ in e.steps])
    rewards = torch.tensor([step.reward for step in steps], dtype=torch.float32)
    fresh = len(episodes) - replayed
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "num_actions": torch.tensor([s.num_actions for s in steps], dtype=torch.long),
        "actions": torch.tensor([s.action for s in steps], dtype=torch.long),
        "old_logprobs": torch.tensor([s.logprob for s in steps], dtype=torch.float32),
        "behaviour_logprobs": torch.tensor(
            [s.logprob if s.behaviour_logprob is None else s.behaviour_logprob for s in steps], dtype=torch.float32
        ),
        "replayed": episode_ids >= fresh,
        "episode_ids": episode_ids,
        "rewards": rewards,
        "episode_groups": torch.tensor([e.seed if i < fresh else -1 for i, e in enumerate(episodes)]),
    }
