"""The teacher's behaviour policy: follow the oracle, but sometimes err on purpose (negative examples)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def require_oracle(info: Mapping[str, Any]) -> int:
    """The oracle's action index of a turn.

    Raises:
        ValueError: if the environment gives none, naming what the SFT stages can do instead.

    Example:
        >>> require_oracle({"actions": ["go north", "go south"], "oracle_action": 1})
        1
    """
    oracle = info.get("oracle_action")
    if oracle is None:
        raise ValueError(
            "The environment gives no info['oracle_action'], so the SFT stages cannot label its turns. Train them from "
            "a JSONL dataset instead (--data.dataset=turns.jsonl: turns an LLM or a person labelled), or skip them "
            "and start RLFT from a policy export (--model.init_args.backbone.name_or_path=DIR)."
        )
    return int(oracle)


def teacher_label(info: Mapping[str, Any]) -> int:
    """The action the teacher's reflection recommends, which the SFT stages train on.

    ``info["teacher_action"]`` where the environment's teacher is not the oracle (AutoExplore v1's teacher searches
    with what the agent was shown), otherwise ``info["oracle_action"]``.

    Raises:
        ValueError: if the environment gives neither (see :func:`require_oracle`).

    Example:
        >>> teacher_label({"actions": ["cd ..", "cat a.py"], "oracle_action": 0, "teacher_action": 1})
        1
    """
    teacher = info.get("teacher_action")
    return require_oracle(info) if teacher is None else int(teacher)


def teacher_action(info: Mapping[str, Any], rng: np.random.Generator, mistake_prob: float = 0.0) -> tuple[int, bool]:
    """Pick the teacher's action for one turn.

    The teacher's action is :func:`teacher_label` (the oracle's unless the environment names its teacher's). With
    probability ``mistake_prob`` the teacher takes a uniformly random wrong action (a negative example); the
    reflection at the next turn is then the corrective kind. The wrong actions are ``info["mistake_actions"]`` where
    the environment gives them (DangerousTaxi leaves out the dangerous ones, which would end the episode before any
    correction), otherwise every admissible action other than the teacher's.

    Args:
        info: The environment's info of this turn (``actions``, ``oracle_action``, optionally ``teacher_action``).
        rng: Random generator of the rollout.
        mistake_prob: Probability of a deliberate wrong action, in [0, 1].

    Returns:
        The chosen action index and whether it was a deliberate mistake.

    Raises:
        ValueError: if the environment gives no ``oracle_action`` or ``mistake_prob`` is not a probability.
    """
    if not 0.0 <= mistake_prob <= 1.0:
        raise ValueError(f"mistake_prob must be in [0, 1], got {mistake_prob}.")
    label = teacher_label(info)
    if mistake_prob > 0 and rng.random() < mistake_prob:
        wrong = info.get("mistake_actions")
        if wrong is None:
            wrong = [a for a in range(len(info["actions"])) if a != label]
        if len(wrong):
            return int(wrong[int(rng.integers(len(wrong)))]), True
    return label, False
