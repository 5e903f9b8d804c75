"""Advantages of the policy-gradient loss: returns-to-go, generalised advantage estimates and group baselines.

All work on the steps of several episodes laid end to end (``episode_ids`` contiguous), vectorised, as
:func:`datamodules.rl_batches.episodes_to_batch` lays them out.
"""

from __future__ import annotations

import torch
from torch import Tensor


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


def episode_returns(rewards: Tensor, episode_ids: Tensor, episodes: int) -> Tensor:
    """Undiscounted return of each of ``episodes`` episodes from the rewards of their steps."""
    return torch.zeros(episodes, dtype=rewards.dtype, device=rewards.device).index_add_(0, episode_ids, rewards)


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


def baseline_advantages(batch: dict[str, Tensor], baseline: str, gamma: float) -> Tensor:
    """Each step's advantage under a baseline that needs no value head, before any normalisation.

    Args:
        batch: A batch of :func:`datamodules.rl_batches.episodes_to_batch` (``rewards``, ``episode_ids``,
            ``episode_groups``).
        baseline: ``"batch_mean"`` (the discounted return-to-go minus its batch mean) or ``"group"`` (the episode's
            :func:`group_advantages` on every one of its steps).
        gamma: Discount of the return-to-go (``"batch_mean"``).
    """
    if baseline == "group":
        returns = episode_returns(batch["rewards"], batch["episode_ids"], len(batch["episode_groups"]))
        return group_advantages(returns, batch["episode_groups"])[batch["episode_ids"]]
    if baseline == "batch_mean":
        returns = discounted_returns(batch["rewards"], batch["episode_ids"], gamma)
        return returns - returns.mean()
    raise ValueError(f"baseline must be 'batch_mean' or 'group' here, got {baseline!r}.")
