"""The players and the training stages as LightningModules."""

from lightning_modules.action_head import ActionHead
from lightning_modules.agent import TEACHER, Agent
from lightning_modules.backbone import BackboneSpec, LoRASpec, TinyGPT2Spec, export_backbone, load_backbone
from lightning_modules.evaluation import Evaluation, evaluate_player, results_table
from lightning_modules.llm_agent import LLMAgent
from lightning_modules.policy_sft import PolicySFTModule
from lightning_modules.reflect_rl import ReflectRLModule
from lightning_modules.reflection import Reflector, generate_reflections
from lightning_modules.reflection_sft import ReflectionSFTModule

__all__ = [
    "TEACHER",
    "ActionHead",
    "Agent",
    "BackboneSpec",
    "Evaluation",
    "LLMAgent",
    "LoRASpec",
    "PolicySFTModule",
    "ReflectRLModule",
    "ReflectionSFTModule",
    "Reflector",
    "TinyGPT2Spec",
    "evaluate_player",
    "export_backbone",
    "generate_reflections",
    "load_backbone",
    "results_table",
]
