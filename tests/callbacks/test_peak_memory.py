import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from callbacks import PeakMemoryCallback
from callbacks.memory import peak_rss_mb, reset_peak_rss


class Regression(L.LightningModule):
    def __init__(self, allocate_mb: int) -> None:
        super().__init__()
        self.layer, self.allocate_mb = nn.Linear(4, 1), allocate_mb

    def training_step(self, batch, batch_idx):
        if batch_idx == 0 and self.allocate_mb:
            ballast = torch.ones(self.allocate_mb * 2**18)  # float32: 4 bytes each, touched
            del ballast
        x, y = batch
        return nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(tmp_path, allocate_mb: int) -> float:
    data = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4)
    trainer = L.Trainer(
        max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        callbacks=[PeakMemoryCallback()], default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(Regression(allocate_mb), data)
    return float(trainer.callback_metrics["system/peak_rss_mb"])


def test_each_fit_reports_its_own_peak(tmp_path):
    if not reset_peak_rss():
        import pytest

        pytest.skip("the peak cannot be reset on this system")
    big = fit(tmp_path, allocate_mb=300)
    small = fit(tmp_path, allocate_mb=0)
    assert big > small + 200  # the second fit does not inherit the first one's peak
    assert small <= peak_rss_mb() + 1
