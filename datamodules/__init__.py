"""Data: the prompt format, prompt tokenisation, and the RolloutDataModule that plays environments on the fly.

Also the LLM teacher behind an OpenAI-compatible endpoint (:mod:`datamodules.llm`) and SFT datasets on disk
(:mod:`datamodules.dataset`).
"""

from datamodules.dataset import export_dataset, read_dataset, write_dataset
from datamodules.encoding import PromptEncoder
from datamodules.llm import ChatClient, EndpointConfig, EndpointError, LLMTeacher
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
    "ChatClient",
    "EndpointConfig",
    "EndpointError",
    "EpisodeResult",
    "LLMTeacher",
    "PromptEncoder",
    "RolloutDataModule",
    "TeacherStream",
    "Turn",
    "export_dataset",
    "format_action_answer",
    "format_policy_prompt",
    "format_reflection_prompt",
    "play_episodes",
    "read_dataset",
    "recommended_action",
    "write_dataset",
]
