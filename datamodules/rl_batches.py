"""On-policy rollouts as training batches: exact token ids, returns per step, and the replay buffer of successes."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


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


def discounted_returns(rewards: Tensor, episode_ids: Tensor, gamma: float) -> Tensor:
    """Return-to-go of every step, for steps of several episodes laid end to end (vectorised, no Python loop).

    Args:
        rewards: ``[steps]`` rewards in time order within each episode.
        episode_ids: ``[steps]`` episode index of each step (equal ids are contiguous).
        gamma: Discount factor.
    """
    n = rewards.numel()
    if n == 0:
        return rewards.clone()
    index = torch.arange(n, device=rewards.device, dtype=torch.float64)
    same = episode_ids.unsqueeze(0) == episode_ids.unsqueeze(1)
    later = index.unsqueeze(0) >= index.unsqueeze(1)  # [t, k]: step k is at or after step t
    powers = torch.where(same & later, gamma ** (index.unsqueeze(0) - index.unsqueeze(1)), torch.zeros(()).double())
    return (powers @ rewards.double()).to(rewards.dtype)


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


def group_advantages(returns: Tensor, groups: Tensor) -> Tensor:
    """Each episode's return minus the mean return of the other episodes of its group (leave-one-out, as in RLOO).

    Episodes of one group played the same task (seed), so the baseline removes how hard the task is and leaves how
    well the episode played it; a group whose episodes all did equally well gets no push. An episode alone in its group
    (or with ``groups < 0``: a replayed one) is compared with the mean return of the grouped episodes instead.

    Args:
        returns: ``[episodes]`` undiscounted episode returns.
        groups: ``[episodes]`` group id of each episode (``-1``: no group).
    """
    grouped = groups >= 0
    same = (groups.unsqueeze(0) == groups.unsqueeze(1)) & grouped.unsqueeze(0) & grouped.unsqueeze(1)
    same.fill_diagonal_(False)
    others = same.sum(-1)
    leave_one_out = (same.to(returns.dtype) @ returns) / others.clamp(min=1)
    fallback = returns[grouped].mean() if grouped.any() else returns.mean()
    return returns - torch.where(others > 0, leave_one_out, fallback)


def episodes_to_batch(episodes: Sequence[Episode], pad_id: int, gamma: float, replayed: int = 0) -> dict[str, Any]:
    """Lay the episodes' steps end to end as one left-padded batch.

    Returns:
        ``input_ids``, ``attention_mask``, ``num_actions``, ``actions``, ``old_logprobs``, ``behaviour_logprobs``
        (equal to ``old_logprobs`` where the policy acted without exploring), ``returns`` (discounted
        return-to-go per step), ``rewards``, ``episode_ids`` (index of each step's episode), ``replayed``
        (``True`` on steps of replayed episodes, which are the last ``replayed`` episodes) and ``group_advantages``
        (per step, its episode's :func:`group_advantages`, the fresh episodes grouped by seed).
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
    episode_returns = torch.tensor([e.episode_return for e in episodes], dtype=torch.float32)
    groups = torch.tensor([e.seed if i < fresh else -1 for i, e in enumerate(episodes)], dtype=torch.long)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "num_actions": torch.tensor([s.num_actions for s in steps], dtype=torch.long),
        "actions": torch.tensor([s.action for s in steps], dtype=torch.long),
        "old_logprobs": torch.tensor([s.logprob for s in steps], dtype=torch.float32),
        "behaviour_logprobs": torch.tensor(
            [s.logprob if s.behaviour_logprob is None else s.behaviour_logprob for s in steps], dtype=torch.float32
        ),
        "returns": discounted_returns(rewards, episode_ids, gamma),
        "replayed": episode_ids >= fresh,
        "episode_ids": episode_ids,
        "rewards": rewards,
        "group_advantages": group_advantages(episode_returns, groups)[episode_ids],
    }


def gae_advantages(rewards: Tensor, values: Tensor, episode_ids: Tensor, gamma: float, lam: float) -> Tensor:
    """Generalised advantage estimates of steps of several episodes laid end to end (vectorised).

    Each episode's last step is terminal (a horizon cut counts as the end of the task), so nothing is bootstrapped
    past it. ``lam=1`` gives the return-to-go minus the value; ``lam=0`` the one-step TD error.

    Args:
        rewards: ``[steps]`` rewards in time order within each episode.
        values: ``[steps]`` value estimates of the states the steps were taken in.
        episode_ids: ``[steps]`` episode index of each step (equal ids are contiguous).
        gamma: Discount factor.
        lam: GAE's lambda.
    """
    if rewards.numel() == 0:
        return rewards.clone()
    last = torch.zeros(1, dtype=torch.bool, device=rewards.device)
    continues = torch.cat([episode_ids[1:] == episode_ids[:-1], last])
    next_values = torch.cat([values[1:], values.new_zeros(1)]) * continues
    deltas = rewards + gamma * next_values - values
    return discounted_returns(deltas, episode_ids, gamma * lam)
