"""Training curves as a PNG next to the TensorBoard logs, for people who would rather look at a picture."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from datamodules.smoothing import running_mean

__all__ = ["CurvePlotCallback", "running_mean"]  # running_mean: also imported from here by older scripts


class CurvePlotCallback(Callback):
    """Records logged scalars against the global step and plots them to ``<log_dir>/<filename>``.

    Training keys (``rollout/...``, ``train/...``) are read after every training step and drawn smoothed (a running
    mean over ``smoothing`` steps) with the raw values faint behind; validation keys after every validation. The PNG
    is rewritten at each validation and at the end of ``fit``, on the global-zero process only.

    Args:
        keys: Metric keys to plot, each in the same axes (success rates and accuracies share the 0-1 scale).
        filename: The PNG's name in the run's log directory.
        smoothing: Window of the running mean drawn over training curves.
        title: The plot's title (default: the LightningModule's class name).

    Example:
        >>> CurvePlotCallback(["rollout/success_rate", "val/success_rate"])
    """

    def __init__(
        self,
        keys: list[str] | None = None,
        filename: str = "curves.png",
        smoothing: int = 10,
        title: str | None = None,
    ) -> None:
        self.keys = list(keys or ["rollout/success_rate", "val/success_rate"])
        self.filename = filename
        self.smoothing = max(1, smoothing)
        self.title = title
        self.history: dict[str, list[tuple[int, float]]] = defaultdict(list)

    def _record(self, trainer: L.Trainer, prefixes: tuple[str, ...]) -> None:
        for key in self.keys:
            if key.startswith(prefixes) and key in trainer.callback_metrics:
                self.history[key].append((trainer.global_step, float(trainer.callback_metrics[key])))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self._record(trainer, ("rollout/", "train/", "curriculum/"))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._record(trainer, ("val/",))
        self.plot(trainer, pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.plot(trainer, pl_module)

    def plot(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Path | None:
        """Write the PNG now; return its path (``None`` off the global-zero process or with nothing to plot)."""
        directory = trainer.log_dir  # every rank asks: under DDP it is a broadcast
        if not trainer.is_global_zero or not any(self.history.values()) or directory is None:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for key, points in self.history.items():
            if not points:
                continue
            steps, values = [s for s, _ in points], [v for _, v in points]
            if key.startswith("val/"):
                ax.plot(steps, values, marker="o", label=key)
                continue
            (line,) = ax.plot(steps, running_mean(values, self.smoothing), label=f"{key} (mean of {self.smoothing})")
            ax.plot(steps, values, color=line.get_color(), alpha=0.2, linewidth=0.8)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        ax.set_title(self.title or type(pl_module).__name__, fontsize=10)
        fig.tight_layout()
        path = Path(directory) / self.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    def state_dict(self) -> dict[str, Any]:
        return {"history": dict(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = defaultdict(list, state_dict["history"])
