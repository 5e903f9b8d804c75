"""Peak resident memory of a stage, logged as ``system/peak_rss_mb``."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def peak_rss_mb() -> float:
    """The process's peak resident set size in MiB (Linux ``VmHWM``; elsewhere ``getrusage``'s maximum)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def reset_peak_rss() -> bool:
    """Restart the peak-RSS count from the current resident set (Linux only); return whether it could."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


class PeakMemoryCallback(Callback):
    """Logs the peak resident memory of this fit (or test) as ``system/peak_rss_mb``, rank 0's process.

    On Linux the peak is reset when the stage starts, so that several stages run in one process (the pipeline) each
    report their own peak; elsewhere it is the process's peak so far (``system/peak_rss_reset`` says which).

    Example:
        >>> trainer = Trainer(callbacks=[PeakMemoryCallback()])
    """

    def __init__(self) -> None:
        self.reset = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.reset = reset_peak_rss()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        pl_module.log("system/peak_rss_mb", peak_rss_mb(), rank_zero_only=True)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._final(trainer)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._final(trainer)

    def _final(self, trainer: L.Trainer) -> None:
        if trainer.is_global_zero and trainer.logger is not None:
            metrics = {"system/peak_rss_mb": peak_rss_mb(), "system/peak_rss_reset": float(self.reset)}
            trainer.logger.log_metrics(metrics, step=trainer.global_step)
