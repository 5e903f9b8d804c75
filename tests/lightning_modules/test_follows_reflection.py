"""`val/follows_reflection` and `test/follows_reflection`: logged by both policy stages, with or without rollouts."""

import pytest
from rl_fixtures import data, trainer

from lightning_modules import BackboneSpec, PolicySFTModule, ReflectRLModule


def policy_sft(exports, **kwargs) -> PolicySFTModule:
    return PolicySFTModule(BackboneSpec(name_or_path=str(exports[1])), **kwargs)


@pytest.mark.parametrize("split", ["val", "test"])
def test_policy_sft_logs_it_on_held_out_turns_without_rollouts(exports, tmp_path, split):
    run = trainer(tmp_path, 1, limit_val_batches=2, limit_test_batches=2)
    metrics = (run.validate if split == "val" else run.test)(
        policy_sft(exports, reflection="teacher"), datamodule=data()
    )
    follows = metrics[0][f"{split}/follows_reflection"]
    # the DangerousTaxi teacher always recommends the oracle's action: following it is being right
    assert follows == pytest.approx(metrics[0][f"{split}/accuracy"])
    without = run.validate(policy_sft(exports, reflection=None), datamodule=data())
    assert "val/follows_reflection" not in without[0]  # no analysis, nothing to follow


def test_both_policy_stages_log_it_from_held_out_episodes(exports, tmp_path):
    for module in (
        policy_sft(exports, reflection="teacher", val_rollouts=2),
        ReflectRLModule(BackboneSpec(name_or_path=str(exports[1])), reflection="teacher", val_rollouts=2),
    ):
        metrics = trainer(tmp_path, 1, limit_val_batches=1).validate(module, datamodule=data())[0]
        assert 0.0 <= metrics["val/follows_reflection"] <= 1.0
