"""Callbacks that steer the data (negative examples during SFT, the curriculum during RLFT) and plot curves."""

from callbacks.curriculum import CurriculumCallback, CurriculumStage
from callbacks.curves import CurvePlotCallback
from callbacks.negative_examples import NegativeExampleCallback

__all__ = ["CurriculumCallback", "CurriculumStage", "CurvePlotCallback", "NegativeExampleCallback"]
