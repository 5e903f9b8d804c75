"""Callbacks that steer the data: negative examples (and, with RLFT, the curriculum and transcripts)."""

from callbacks.negative_examples import NegativeExampleCallback

__all__ = ["NegativeExampleCallback"]
