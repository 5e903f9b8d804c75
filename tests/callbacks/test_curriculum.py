"""CurriculumCallback types the datamodule and the module against datamodules.protocol."""

from types import SimpleNamespace

import pytest

from callbacks import CurriculumCallback, CurriculumStage
from datamodules import RolloutDataModule


def test_the_curriculum_moves_the_datamodule_and_clears_an_owners_replay():
    datamodule = RolloutDataModule(num_envs=1)
    trainer = SimpleNamespace(datamodule=datamodule)
    cleared = []
    module = SimpleNamespace(log=lambda *args, **kwargs: None, clear_replay=lambda: cleared.append(True))
    callback = CurriculumCallback([CurriculumStage("pickup", steps=1), CurriculumStage("full")])
    callback.setup(trainer, module, "fit")
    assert datamodule.stage == "pickup"
    callback.on_train_batch_end(trainer, module, None, {"episodes": []}, 0)
    assert datamodule.stage == "full" and cleared == [True]
    no_replay = SimpleNamespace(log=lambda *args, **kwargs: None)  # a module without a replay buffer is fine
    callback = CurriculumCallback([CurriculumStage("pickup", steps=1), CurriculumStage("full")])
    callback.setup(trainer, no_replay, "fit")
    callback.on_train_batch_end(trainer, no_replay, None, {"episodes": []}, 0)
    assert datamodule.stage == "full"


def test_a_datamodule_without_the_contract_is_named():
    callback = CurriculumCallback([CurriculumStage("pickup")])
    half = SimpleNamespace(env_id="X", stage=None, set_stage=lambda stage: None)
    with pytest.raises(TypeError, match=r"CurriculumCallback needs a datamodule .*SimpleNamespace has no known_stages"):
        callback.setup(SimpleNamespace(datamodule=half), None, "fit")
    with pytest.raises(TypeError, match="the trainer has no datamodule"):
        callback.setup(SimpleNamespace(datamodule=None), None, "fit")
