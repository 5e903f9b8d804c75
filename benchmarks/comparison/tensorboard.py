"""Reading what a stage logged: its TensorBoard scalars, when it ran, its peak memory."""

from __future__ import annotations

import functools
from pathlib import Path

#: ``tag -> [(step, value, wall_time)]``: every scalar of one TensorBoard run.
Scalars = dict[str, list[tuple[int, float, float]]]


@functools.cache
def scalars(log_dir: Path) -> Scalars:
    """Every scalar of a TensorBoard run as ``tag -> [(step, value, wall_time)]`` (read once per run)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value, e.wall_time) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def stage_span(log_dir: Path) -> tuple[float, float] | None:
    """When a stage began and when it logged its last event, in seconds since the epoch.

    The start is the time stamp in the name of its first event file, set when the logger was created.

    Returns:
        ``(start, end)``, or ``None`` if the stage never logged.
    """
    events = sorted(log_dir.glob("events.out.tfevents.*"))
    if not events:
        return None
    start = float(events[0].name.split(".")[3])
    return start, max((wall for values in scalars(log_dir).values() for _, _, wall in values), default=start)


def peak_memory(stage_dir: Path) -> float | None:
    """The largest ``system/peak_rss_mb`` a stage logged (``None`` if it logged none)."""
    if not (stage_dir / "version_0").is_dir():
        return None
    values = [value for _, value, _ in scalars(stage_dir / "version_0").get("system/peak_rss_mb", [])]
    return max(values) if values else None
