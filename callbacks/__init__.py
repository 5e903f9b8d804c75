"""Callbacks that steer the data: negative examples during SFT, the curriculum during RLFT."""

from callbacks.curriculum import CurriculumCallback, CurriculumStage
from callbacks.negative_examples import NegativeExampleCallback

__all__ = ["CurriculumCallback", "CurriculumStage", "NegativeExampleCallback"]
