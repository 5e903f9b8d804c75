"""NegativeExampleCallback schedules changes of the datamodule's mistake probability; the datamodule owns the value."""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from callbacks import NegativeExampleCallback
from datamodules import RolloutDataModule

TAXI = {"observation_format": "compact"}


class Module:
    """Records what the callback logs."""

    def __init__(self) -> None:
        self.logged: dict[str, list[float]] = {}

    def log(self, key, value, **kwargs) -> None:
        self.logged.setdefault(key, []).append(value)


def data(**kwargs) -> RolloutDataModule:
    return RolloutDataModule(env_kwargs=TAXI, num_envs=2, batch_size=4, **kwargs)


def run(callback, datamodule, steps, start=0):
    """Fit-like hook calls of ``steps`` training steps from ``start``: the module and the probability of each step."""
    trainer, module, seen = SimpleNamespace(datamodule=datamodule, global_step=start), Module(), []
    callback.setup(trainer, module, "fit")
    callback.on_train_start(trainer, module)
    for step in range(start, start + steps):
        trainer.global_step = step
        callback.on_train_batch_start(trainer, module, {}, step)
        seen.append(datamodule.mistake_prob)
        callback.on_train_batch_end(trainer, module, None, {"turns": [None] * 4, "negative_share": 0.25}, step)
    return module, seen


def test_the_schedule_reaches_a_stream_of_teacher_episodes():
    datamodule = data(mistake_prob=0.1)
    stream = datamodule.train_stream()
    module, seen = run(NegativeExampleCallback(schedule={0: 0.4, 100: 0.0}), datamodule, 101)
    assert seen[0] == 0.4 and np.isclose(seen[50], 0.2) and seen[100] == 0.0
    assert stream.mistake_prob == 0.0  # the live stream plays the next turns with it
    assert module.logged["train/mistake_prob"] == seen and module.logged["train/negative_share"] == [0.25] * 101
    assert datamodule.hparams.mistake_prob == 0.1  # the held-out sets keep the configured value


def test_before_the_first_point_and_without_a_schedule_the_datamodule_value_holds():
    datamodule = data(mistake_prob=0.3)
    _, seen = run(NegativeExampleCallback(schedule={5: 0.1}), datamodule, 8)
    assert seen == [0.3] * 5 + [0.1] * 3
    datamodule = data(mistake_prob=0.3)
    module, seen = run(NegativeExampleCallback(), datamodule, 3)
    assert seen == [0.3] * 3 and module.logged["train/mistake_prob"] == [0.3] * 3


def test_a_fixed_teacher_budget_plays_the_start_value_and_warns_once_that_the_schedule_changes_nothing():
    datamodule = data(mistake_prob=0.0, teacher_episodes=3)
    callback = NegativeExampleCallback(schedule={0: 1.0, 10: 0.0})
    with pytest.warns(UserWarning, match=r"changes nothing after step 0.*teacher_episodes=null") as caught:
        module, seen = run(callback, datamodule, 12)
    assert len([w for w in caught if "changes nothing" in str(w.message)]) == 1
    assert seen == [1.0] * 12  # set once at the start, never scheduled afterwards
    assert "train/mistake_prob" not in module.logged and module.logged["train/negative_share"] == [0.25] * 12
    turns = datamodule.fixed_turns()  # what the budget is played with once training has started
    assert np.mean([t.negative for t in turns]) > 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(callback, datamodule, 1)  # a second fit with the same callback: said once already


def test_a_constant_schedule_on_a_fixed_budget_is_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, seen = run(NegativeExampleCallback(schedule={0: 0.5, 10: 0.5}), data(teacher_episodes=3), 12)
    assert seen == [0.5] * 12


def test_the_rl_stage_has_no_teacher_episodes_to_schedule():
    datamodule = data()
    datamodule.examples = "rollout"
    with pytest.warns(UserWarning, match="changes nothing"):
        run(NegativeExampleCallback(schedule={0: 0.3, 10: 0.0}), datamodule, 1)


def test_the_deprecated_probability_must_agree_with_the_datamodule():
    with pytest.warns(FutureWarning, match=r"Set data.mistake_prob=0.2"):
        callback = NegativeExampleCallback(0.2)
    _, seen = run(callback, data(mistake_prob=0.2), 2)
    assert seen == [0.2, 0.2]
    with pytest.warns(FutureWarning):
        callback = NegativeExampleCallback(probability=0.3)
    with pytest.raises(ValueError, match=r"probability=0.3\) contradicts the datamodule's mistake_prob=0.2"):
        run(callback, data(mistake_prob=0.2), 1)
    with pytest.raises(ValueError, match="not a probability as well"):
        NegativeExampleCallback(probability=0.2, schedule={0: 0.1})
    with pytest.raises(ValueError, match="not in"):
        NegativeExampleCallback(schedule={0: 1.5})


def test_a_datamodule_without_the_contract_is_named():
    callback = NegativeExampleCallback()
    with pytest.raises(TypeError, match=r"NegativeExampleCallback needs a datamodule with mistake_prob.*no datamodule"):
        callback.setup(SimpleNamespace(datamodule=None), Module(), "fit")
    incomplete = SimpleNamespace(mistake_prob=0.0, set_mistake_prob=lambda p: None)
    with pytest.raises(TypeError, match=r"MistakeTarget\); SimpleNamespace has no streams_teacher_turns\.$"):
        callback.setup(SimpleNamespace(datamodule=incomplete), Module(), "fit")
