"""Smoothing of per-step training curves, shared by :class:`callbacks.CurvePlotCallback` and the pipeline's RL plot.

It sits in ``datamodules`` because both the callbacks and ``lightning_modules`` may import from here, while
``lightning_modules`` may not import a callback.
"""

from __future__ import annotations


def running_mean(values: list[float], window: int) -> list[float]:
    """Mean of each value and the ``window - 1`` before it (fewer at the start).

    Example:
        >>> running_mean([0.0, 1.0, 0.0, 1.0], window=2)
        [0.0, 0.5, 0.5, 0.5]
    """
    return [sum(values[max(0, i - window + 1) : i + 1]) / len(values[max(0, i - window + 1) : i + 1])
            for i in range(len(values))]  # fmt: skip
