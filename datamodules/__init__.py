"""Data: the prompt format, prompt tokenisation, and the RolloutDataModule that plays environments on the fly."""

from datamodules.encoding import PromptEncoder
from datamodules.prompt import (
    ACTION_LABELS,
    format_action_answer,
    format_policy_prompt,
    format_reflection_prompt,
    recommended_action,
)
from datamodules.rollout import EpisodeResult, TeacherStream, Turn, play_episodes
from datamodules.rollout_datamodule import RolloutDataModule

__all__ = [
    "ACTION_LABELS",
    "EpisodeResult",
    "PromptEncoder",
    "RolloutDataModule",
    "TeacherStream",
    "Turn",
    "format_action_answer",
    "format_policy_prompt",
    "format_reflection_prompt",
    "play_episodes",
    "recommended_action",
]
