"""Training curves and validation timelines of a run, built from its logged scalars, and when they reach a level."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from datamodules.smoothing import running_mean

from .tensorboard import scalars, stage_span

#: ``(environment steps, running mean of rollout success, seconds since the start)`` per logged RL step.
Curve = list[tuple[float, float, float]]


class Validation(NamedTuple):
    """One validation of a method's policy, placed on the timeline of all the stages that trained the method.

    Attributes:
        minutes: Since the method's first stage began.
        updates: Optimizer steps of every stage so far (reflection SFT included).
        env_steps: Environment steps of RL so far.
        success: Held-out validation success.
    """

    minutes: float
    updates: int
    env_steps: float
    success: float


def training_curve(log_dir: Path, window: int = 10) -> Curve:
    """An RL stage's training success (running mean over ``window`` steps) against environment steps and time.

    Returns:
        ``(environment steps, running mean of rollout success, seconds since the start)`` per logged RL step; empty
        if the stage did not log rollouts.
    """
    tags = scalars(log_dir)
    if "rollout/success_rate" not in tags or "rollout/env_steps" not in tags:
        return []
    env_steps = {step: value for step, value, _ in tags["rollout/env_steps"]}
    points = [(step, value, wall) for step, value, wall in tags["rollout/success_rate"] if step in env_steps]
    smooth = running_mean([value for _, value, _ in points], window)
    start = min(wall for _, _, wall in tags["rollout/success_rate"])
    return [(env_steps[step], rate, wall - start) for (step, _, wall), rate in zip(points, smooth, strict=True)]


def first_reach(curve: Curve, threshold: float) -> tuple[float, float] | None:
    """Environment steps and seconds at which the smoothed training success first reaches ``threshold``."""
    return next(((steps, seconds) for steps, rate, seconds in curve if rate >= threshold), None)


def first_validation(timeline: list[Validation], threshold: float) -> Validation | None:
    """The first validation whose success reaches ``threshold``."""
    return next((v for v in timeline if v.success >= threshold), None)


def validation_timeline(output: Path, stages: tuple[str, ...]) -> list[Validation]:
    """Every validation of the policy across ``stages``, in the order the stages ran.

    A stage lasts from the moment its logger was created to its last logged event (:func:`stage_span`); validation
    success is the policy's, on held-out episodes of the task the test uses, with the reflections it really reads.
    Stages without a policy (reflection SFT) only add time and updates.

    Args:
        output: A pipeline run's output directory.
        stages: The stages that train a method, in order.

    Returns:
        The validations; empty if one of the stages never ran.
    """
    minutes, updates, points = 0.0, 0, []
    for stage in stages:
        log_dir = output / stage / "version_0"
        if (span := stage_span(log_dir)) is None:
            return []
        start, end = span
        tags = scalars(log_dir)
        env_steps = sorted((step, value) for step, value, _ in tags.get("rollout/env_steps", []))
        for step, rate, wall in tags.get("val/success_rate", []):
            steps = max((value for logged, value in env_steps if logged <= step), default=0.0)
            points.append(Validation(minutes + (wall - start) / 60, updates + step + 1, steps, rate))
        minutes += (end - start) / 60
        updates += max(step for step, _, _ in tags["train/loss"]) + 1
    return points
