"""Data: the prompt format, prompt tokenisation, and the RolloutDataModule that plays environments on the fly.

Also the LLM teacher behind an OpenAI-compatible endpoint (:mod:`datamodules.llm`), SFT datasets on disk
(:mod:`datamodules.dataset`), stage configs read as LightningCLI reads them (:mod:`datamodules.stage_config`), and
the protocols that declare what the callbacks use of the datamodule and the modules (:mod:`datamodules.protocol`).
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
from datamodules.protocol import CurriculumTarget, MistakeTarget, ReplayOwner, RolloutSource
from datamodules.rollout import EpisodeResult, TeacherStream, Turn, play_episodes
from datamodules.rollout_datamodule import RolloutDataModule
from datamodules.stage_config import load_stage_config

__all__ = [
    "ACTION_LABELS",
    "ChatClient",
    "CurriculumTarget",
    "EndpointConfig",
    "EndpointError",
    "EpisodeResult",
    "LLMTeacher",
    "MistakeTarget",
    "PromptEncoder",
    "ReplayOwner",
    "RolloutDataModule",
    "RolloutSource",
    "TeacherStream",
    "Turn",
    "export_dataset",
    "format_action_answer",
    "format_policy_prompt",
    "format_reflection_prompt",
    "load_stage_config",
    "play_episodes",
    "read_dataset",
    "recommended_action",
    "write_dataset",
]
