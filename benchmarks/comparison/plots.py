"""The pictures of the page: training success against environment steps, validation success against updates."""

from __future__ import annotations

from pathlib import Path

from .curves import Curve, Validation
from .methods import METHODS


def seed_count(n: int) -> str:
    """``"1 seed"``, ``"3 seeds"``: the legend's count of the runs a line averages."""
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _pyplot():
    """Matplotlib's pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_success_plot(fig, ax, x_label: str, y_label: str, title: str, path: Path) -> None:
    """Label a success-rate plot (0 to 1), write it to ``path`` and close it."""
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def plot_curves(env: str, curves: dict[str, list[Curve]], path: Path) -> None:
    """Training success against environment steps, one line per method (mean over seeds, seeds faint).

    Args:
        env: The environment, for the title.
        curves: ``method -> one training curve per seed``; empty curves are left out.
        path: The PNG to write.
    """
    import numpy as np

    fig, ax = _pyplot().subplots(figsize=(7, 4))
    for name, runs in curves.items():
        runs = [r for r in runs if r]
        if not runs:
            continue
        grid = np.linspace(0, min(r[-1][0] for r in runs), 100)
        values = [np.interp(grid, [p[0] for p in r], [p[1] for p in r]) for r in runs]
        (line,) = ax.plot(grid, np.mean(values, axis=0), label=f"{METHODS[name].title} ({seed_count(len(runs))})")
        for run in runs:
            ax.plot([p[0] for p in run], [p[1] for p in run], color=line.get_color(), alpha=0.2, linewidth=0.8)
    title = f"{env}: RL training success (with a curriculum: of the current stage)"
    save_success_plot(fig, ax, "environment steps of RL", "training success (running mean of 10 steps)", title, path)


def plot_timelines(env: str, timelines: dict[str, list[list[Validation]]], reflection_steps: int, path: Path) -> None:
    """Validation success against optimizer steps since training began, one line per method and seed.

    Args:
        env: The environment, for the title.
        timelines: ``method -> one validation timeline per seed``.
        reflection_steps: The length of reflection SFT, shaded.
        path: The PNG to write.
    """
    fig, ax = _pyplot().subplots(figsize=(7, 4))
    ax.axvspan(0, reflection_steps, color="grey", alpha=0.12, label="reflection SFT")
    for name, runs in timelines.items():
        colour = None
        for i, run in enumerate(runs):
            label = f"{METHODS[name].title} ({seed_count(len(runs))})" if i == 0 else None
            updates, success = [v.updates for v in run], [v.success for v in run]
            (line,) = ax.plot(updates, success, marker="o", markersize=3, color=colour, alpha=0.8, label=label)
            colour = line.get_color()
    x_label = "optimizer steps of every stage of the method, in order (reflection SFT included)"
    save_success_plot(fig, ax, x_label, "validation success", f"{env}: held-out validation success of the policy", path)
