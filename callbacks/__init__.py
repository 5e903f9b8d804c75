"""Callbacks: the data's steering (negative examples in SFT, the curriculum in RLFT), curves and peak memory."""

from callbacks.curriculum import CurriculumCallback, CurriculumStage
from callbacks.curves import CurvePlotCallback
from callbacks.memory import PeakMemoryCallback
from callbacks.negative_examples import NegativeExampleCallback

__all__ = [
    "CurriculumCallback",
    "CurriculumStage",
    "CurvePlotCallback",
    "NegativeExampleCallback",
    "PeakMemoryCallback",
]
