import gymnasium as gym
import numpy as np
import pytest

import environments  # noqa: F401
from datamodules.encoding import IGNORE_INDEX, PromptEncoder
from datamodules.prompt import ACTIONS_MARKER, recommended_action
from datamodules.rollout import TeacherStream, make_envs, play_episodes
from datamodules.rollout_datamodule import RolloutDataModule
from lightning_modules.backbone import train_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    datamodule = RolloutDataModule(env_kwargs={"observation_format": "compact"}, num_envs=4)
    return train_tokenizer(datamodule.sample_texts(30), vocab_size=400, num_labels=8)


def test_teacher_stream_is_deterministic_and_its_mistakes_are_negative_examples():
    def turns(seed):
        stream = TeacherStream(make_envs("ReflectRL/DangerousTaxi-v0", {}, 3), seed=seed, mistake_prob=0.3)
        return [next(iter(stream)) for _ in range(1)] + [t for _ in range(40) for t in stream.step()]

    first, again, other = turns(1), turns(1), turns(2)
    assert [(t.observation, t.reflection) for t in first] == [(t.observation, t.reflection) for t in again]
    assert [t.observation for t in first] != [t.observation for t in other]
    negatives = [t for t in first if t.negative]
    assert 0.15 < len(negatives) / len(first) < 0.45
    # the turn after a (non-fatal) mistake in the same episode carries a corrective reflection
    corrective = [
        b for a, b in zip(first, first[3:], strict=False) if a.negative and b.seed == a.seed and b.step == a.step + 1
    ]
    assert all("Last action" in t.observation for t in corrective)


def test_zero_mistake_probability_gives_no_negative_examples():
    stream = TeacherStream(make_envs("ReflectRL/DangerousTaxi-v0", {}, 4), seed=0, mistake_prob=0.0)
    assert not any(t.negative for _ in range(50) for t in stream.step())


def test_shuffled_actions_keep_the_oracle_and_the_env_order():
    stream = TeacherStream(make_envs("ReflectRL/DangerousTaxi-v0", {}, 2), seed=0, shuffle_actions=True)
    turns = [t for _ in range(30) for t in stream.step()]
    assert any(t.order != list(range(6)) for t in turns)
    env = gym.make("ReflectRL/DangerousTaxi-v0").unwrapped
    for turn in turns:
        assert sorted(turn.order) == list(range(6))
        assert turn.actions == [env.current_actions[i] for i in turn.order]
    assert all(turn.oracle is not None for turn in turns)


def test_reflection_batch_puts_the_loss_on_the_reflection_and_end_marker_only(tokenizer):
    encoder = PromptEncoder(tokenizer, max_prompt_tokens=64, max_reflection_tokens=48)
    batch = encoder.reflection_batch(
        ["Taxi at row 1.", "Taxi at row 2, column 3. Passenger at R."], ["Go south.", "Go north now."]
    )
    for row in range(2):
        mask = batch["attention_mask"][row].bool()
        labelled = batch["labels"][row] != IGNORE_INDEX
        assert (labelled <= mask).all()  # no loss on padding
        text = tokenizer.decode(batch["input_ids"][row][labelled])
        assert text.strip().startswith("Go") and text.endswith(ACTIONS_MARKER)
        assert batch["input_ids"][row][0] == tokenizer.pad_token_id or mask.all()


def test_prompts_are_cut_from_the_left_to_the_budget(tokenizer):
    encoder = PromptEncoder(tokenizer, max_prompt_tokens=24)
    long_observation = "Taxi at row 1, column 1. " * 30
    batch = encoder.policy_batch([long_observation], [["go south", "go north"]], ["Go south."], [0])
    assert batch["input_ids"].shape[1] == 24
    assert tokenizer.decode(batch["input_ids"][0]).endswith("# Action:")


def test_the_reflection_prompt_budget_cuts_reflection_prompts_and_not_policy_prompts(tokenizer):
    long_observation = "Taxi at row 1, column 1. " * 30
    encoder = PromptEncoder(tokenizer, max_prompt_tokens=40, max_reflection_tokens=8, max_reflection_prompt_tokens=16)

    generation = encoder.reflection_prompt_batch([long_observation])
    sft = encoder.reflection_batch([long_observation], ["Go south."])
    policy = encoder.policy_batch([long_observation], [["go south", "go north"]], ["Go south."], [0])

    assert generation["input_ids"].shape[1] == 16
    assert tokenizer.decode(generation["input_ids"][0]).endswith("# Analyze:\n")
    assert (sft["labels"][0] == IGNORE_INDEX).sum() == 16  # the prompt part of the SFT example
    assert policy["input_ids"].shape[1] == 40
    unset = PromptEncoder(tokenizer, max_prompt_tokens=40)  # None: the policy budget, as before the option existed
    assert unset.reflection_prompt_batch([long_observation])["input_ids"].shape[1] == 40


def test_the_datamodule_hands_the_reflection_prompt_budget_to_its_encoder(tokenizer):
    datamodule = RolloutDataModule(
        env_kwargs={"observation_format": "compact"}, num_envs=2, max_prompt_tokens=40, max_reflection_prompt_tokens=16
    )
    datamodule.bind(tokenizer, examples="rollout")
    assert (datamodule.encoder.max_prompt_tokens, datamodule.encoder.reflection_prompt_budget) == (40, 16)
    with pytest.raises(ValueError, match="max_reflection_prompt_tokens"):
        RolloutDataModule(max_reflection_prompt_tokens=0)


def test_datamodule_yields_policy_batches_with_oracle_targets(tokenizer):
    datamodule = RolloutDataModule(
        env_kwargs={"observation_format": "compact"}, num_envs=4, batch_size=8, val_episodes=3
    )
    datamodule.bind(tokenizer, examples="policy")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["input_ids"].shape[0] == 8 and batch["num_actions"].tolist() == [6] * 8
    assert batch["targets"].tolist() == [t.oracle for t in batch["turns"]]
    val_turns = datamodule.eval_turns("val")
    assert {t.seed for t in val_turns} == set(datamodule.eval_seeds("val", 3))
    assert datamodule.eval_turns("val") is val_turns  # fixed
    assert not {t.seed for t in datamodule.eval_turns("test")} & {t.seed for t in val_turns}
    with pytest.raises(ValueError, match="Unknown environment"):
        RolloutDataModule(env_id="ReflectRL/Nope-v0")


def test_a_teacher_budget_cycles_through_the_same_episodes_in_shuffled_passes(tokenizer):
    datamodule = RolloutDataModule(env_kwargs={"observation_format": "compact"}, num_envs=3, batch_size=4,
                                   teacher_episodes=5, mistake_prob=0.2)  # fmt: skip
    datamodule.bind(tokenizer, examples="policy")
    budget = TeacherStream(make_envs("ReflectRL/DangerousTaxi-v0", {"observation_format": "compact"}, 3), seed=0,
                           mistake_prob=0.2).episodes(5)  # fmt: skip
    keys = sorted((t.seed, t.step) for episode in budget for t in episode)
    batches = iter(datamodule.train_dataloader())
    passes = [[(t.seed, t.step) for _ in range(len(keys) // 4) for t in next(batches)["turns"]] for _ in range(2)]
    for seen in passes:  # every pass draws each turn of the five episodes at most once
        assert len(set(seen)) == len(seen) and set(seen) <= set(keys) and len(seen) > len(keys) - 4
    assert passes[0] != passes[1]  # in a new order
    with pytest.raises(ValueError, match="teacher_episodes"):
        RolloutDataModule(teacher_episodes=0)


def test_ranks_get_different_environments(tokenizer):
    class FakeTrainer:
        global_rank = 1

    datamodule = RolloutDataModule(num_envs=2)
    datamodule.bind(tokenizer)
    rank0 = [t.observation for t in datamodule.train_stream().step()]
    datamodule.trainer = FakeTrainer()
    rank1 = [t.observation for t in datamodule.train_stream().step()]
    assert rank0 != rank1


def test_play_episodes_with_the_oracle_solves_and_reports_in_seed_order():
    envs = make_envs("ReflectRL/DangerousTaxi-v0", {}, 3)
    results = play_episodes(envs, list(range(7)), lambda turns: [t.oracle for t in turns], stage="pickup")
    assert [r.seed for r in results] == list(range(7))
    assert all(r.success and r.episode_return > 0 for r in results)
    random = play_episodes(envs, [0, 1, 2, 3], lambda turns: [3] * len(turns))  # always west: hits the wall
    assert not any(r.success for r in random)


def test_play_episodes_plays_a_repeated_seed_once_per_mention():
    envs = make_envs("ReflectRL/DangerousTaxi-v0", {}, 2)
    rng = np.random.default_rng(0)
    results = play_episodes(envs, [5, 5, 5, 6], lambda turns: rng.integers(0, 6, len(turns)).tolist(), stage="pickup")
    assert [r.seed for r in results] == [5, 5, 5, 6]
    assert len({tuple(t["choice"] for t in r.transcript) for r in results[:3]}) > 1  # three separate episodes
    assert all(r.transcript[0]["observation"] == results[0].transcript[0]["observation"] for r in results[:3])


def test_recommended_action_takes_the_last_mention():
    actions = ["go south", "go north", "cd src", "cd src/utils"]
    assert recommended_action("Going north was a mistake; the best action now is to go south.", actions) == 0
    assert recommended_action("Next: cd src/utils.", actions) == 3
    assert recommended_action("No idea.", actions) is None


def test_negative_example_callback_schedule():
    from callbacks import NegativeExampleCallback

    callback = NegativeExampleCallback(schedule={0: 0.4, 100: 0.0})
    assert callback.probability_at(0) == 0.4
    assert np.isclose(callback.probability_at(50), 0.2)
    assert callback.probability_at(500) == 0.0
    with pytest.raises(ValueError, match="not in"):
        NegativeExampleCallback(probability=1.5)


class OverlappingTaxi(gym.Wrapper):
    """DangerousTaxi behind the worker-process protocol: requests are queued, answered on *_wait (like ALFWorld)."""

    def __init__(self, calls: list[str]) -> None:
        super().__init__(gym.make("ReflectRL/DangerousTaxi-v0"))
        self.calls, self._request = calls, None

    @property
    def unwrapped(self):  # the protocol lives on the unwrapped env
        return self

    def teacher_reflection(self) -> str:
        return self.env.unwrapped.teacher_reflection()

    def reset_async(self, seed=None, options=None) -> None:
        self.calls.append("reset_async")
        self._request = ("reset", seed, options)

    def reset_wait(self):
        self.calls.append("reset_wait")
        _, seed, options = self._request
        return self.env.reset(seed=seed, options=options)

    def step_async(self, action) -> None:
        self.calls.append("step_async")
        self._request = ("step", action)

    def step_wait(self):
        self.calls.append("step_wait")
        return self.env.step(self._request[1])


def test_worker_process_environments_are_stepped_and_reset_together_with_the_same_results():
    oracle = lambda turns: [t.oracle for t in turns]  # noqa: E731
    plain = play_episodes(make_envs("ReflectRL/DangerousTaxi-v0", {}, 3), range(7), oracle, stage="pickup")
    calls: list[str] = []
    overlapped = play_episodes([OverlappingTaxi(calls) for _ in range(3)], range(7), oracle, stage="pickup")
    assert [(r.seed, r.length, r.success) for r in overlapped] == [(r.seed, r.length, r.success) for r in plain]
    # every request of a turn goes out before the first answer is awaited
    assert calls[:6] == ["reset_async"] * 3 + ["reset_wait"] * 3
    assert calls[6:12] == ["step_async"] * 3 + ["step_wait"] * 3
    stream_calls: list[str] = []
    stream = TeacherStream([OverlappingTaxi(stream_calls) for _ in range(2)], seed=5, mistake_prob=0.3)
    reference = TeacherStream(make_envs("ReflectRL/DangerousTaxi-v0", {}, 2), seed=5, mistake_prob=0.3)
    for _ in range(30):
        assert [(t.observation, t.reflection) for t in stream.step()] == [
            (t.observation, t.reflection) for t in reference.step()
        ]
    assert stream_calls[2:4] == ["reset_wait"] * 2 and stream_calls[4:6] == ["step_async"] * 2
