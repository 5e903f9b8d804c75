"""Stage 3: returns, replay, the RL step on the rollout's exact ids, the curriculum, and kill-and-resume."""

import io
import math
from pathlib import Path

import pytest
import torch
from rl_fixtures import data, trainer

from callbacks import CurriculumCallback, CurriculumStage
from datamodules.rl_batches import Episode, ReplayBuffer, Step, episodes_to_batch
from lightning_modules import BackboneSpec, ReflectRLModule, load_backbone
from lightning_modules.advantages import discounted_returns, episode_returns, gae_advantages, group_advantages

ROOT = Path(__file__).resolve().parents[2]


def test_discounted_returns_match_a_loop_per_episode():
    rewards = torch.tensor([1.0, -1.0, 2.0, 0.5, 0.0, 3.0])
    episodes = torch.tensor([0, 0, 0, 1, 2, 2])
    expected = []
    for e in episodes.unique():
        r = rewards[episodes == e].tolist()
        expected += [sum(0.9**k * x for k, x in enumerate(r[t:])) for t in range(len(r))]
    torch.testing.assert_close(discounted_returns(rewards, episodes, 0.9), torch.tensor(expected))


def test_gae_matches_a_loop_per_episode_and_reduces_to_returns_at_lambda_one():
    rewards = torch.tensor([1.0, -1.0, 2.0, 0.5, 0.0, 3.0])
    values = torch.tensor([0.3, -0.2, 0.9, 0.1, 0.4, -0.6])
    episodes = torch.tensor([0, 0, 0, 1, 2, 2])
    gamma, lam = 0.9, 0.7
    expected = []
    for e in episodes.unique():
        r, v = rewards[episodes == e].tolist(), values[episodes == e].tolist()
        deltas = [r[t] + gamma * (v[t + 1] if t + 1 < len(r) else 0.0) - v[t] for t in range(len(r))]
        expected += [sum((gamma * lam) ** k * d for k, d in enumerate(deltas[t:])) for t in range(len(r))]
    torch.testing.assert_close(gae_advantages(rewards, values, episodes, gamma, lam), torch.tensor(expected))
    torch.testing.assert_close(
        gae_advantages(rewards, values, episodes, gamma, 1.0), discounted_returns(rewards, episodes, gamma) - values
    )


def test_group_advantages_compare_each_episode_with_the_others_of_its_task():
    returns = torch.tensor([1.0, 0.0, 0.0, 0.5, 0.5, 2.0])
    groups = torch.tensor([7, 7, 7, 9, 9, -1])  # the last one is replayed: no group
    advantages = group_advantages(returns, groups)
    grouped_mean = returns[:5].mean()
    expected = torch.tensor([1.0, -0.5, -0.5, 0.0, 0.0, 2.0 - float(grouped_mean)])
    torch.testing.assert_close(advantages, expected)

    def episode(seed, reward, steps=2):
        return Episode([Step([1, 2], 3, 0, -0.5, reward / steps) for _ in range(steps)], reward > 0, seed)

    batch = episodes_to_batch([episode(3, 1.0), episode(3, 0.0, 3), episode(4, 1.0)], pad_id=0)
    returns = episode_returns(batch["rewards"], batch["episode_ids"], len(batch["episode_groups"]))
    torch.testing.assert_close(returns, torch.tensor([1.0, 0.0, 1.0]))
    per_step = group_advantages(returns, batch["episode_groups"])[batch["episode_ids"]]
    # seed 3: +1 and -1 on every step of each episode; seed 4 alone: its return minus the mean of all three (2/3)
    torch.testing.assert_close(per_step, torch.tensor([1.0, 1.0, -1.0, -1.0, -1.0, 1 / 3, 1 / 3]))


def test_replay_buffer_keeps_successes_and_round_trips():
    win = Episode([Step([1, 2], 6, 0, -0.1, 1.0)], success=True, seed=1)
    loss = Episode([Step([1, 3], 6, 1, -0.2, -0.5)], success=False, seed=2)
    buffer = ReplayBuffer(capacity=2)
    buffer.add([win, loss, win, win])
    assert len(buffer) == 2 and all(e.success for e in buffer.episodes)
    saved = io.BytesIO()
    torch.save(buffer.state_dict(), saved)
    copy = ReplayBuffer()
    copy.load_state_dict(torch.load(io.BytesIO(saved.getvalue()), weights_only=True))  # plain data, no classes
    assert copy.episodes[0].steps == win.steps
    assert [e.seed for e in copy.episodes] == [1, 1] and copy.episodes.maxlen == 2
    buffer.clear()
    assert len(buffer) == 0


def rl_module(exports, **kwargs):
    reflection, policy = exports
    settings = {"reflection": str(reflection), "val_rollouts": 2, "replay_episodes": 2}
    return ReflectRLModule(BackboneSpec(name_or_path=str(policy)), **{**settings, **kwargs})


def test_training_recomputes_the_rollouts_log_probabilities_exactly(exports, tmp_path):
    module = rl_module(exports, lr=1e-2)  # a large step: rollouts one update old would show in the ratio
    datamodule = data()
    fit = trainer(tmp_path, 3, log_every_n_steps=1)
    fit.fit(module, datamodule=datamodule)
    episodes = module.rollout(next(iter(datamodule.train_dataloader())))  # fresh rollouts of the trained policy
    tensors = episodes_to_batch(episodes, datamodule.encoder.pad_id)
    module.train()
    logits = module.head(module.model, tensors["input_ids"], tensors["attention_mask"], tensors["num_actions"])
    recomputed = torch.distributions.Categorical(logits=logits).log_prob(tensors["actions"])
    torch.testing.assert_close(recomputed, tensors["old_logprobs"], atol=1e-5, rtol=0)
    assert fit.callback_metrics["train/ratio"] == pytest.approx(1.0, abs=1e-5)  # step 3 played with step 3's weights
    assert all(not p.requires_grad for p in module.reflection_model.parameters())
    optimized = {id(p) for group in fit.optimizers[0].param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in module.reflection_model.parameters()}
    assert {"rollout/success_rate", "rollout/return", "rollout/episode_length", "train/entropy"} <= set(
        fit.callback_metrics
    )


def test_explored_steps_are_weighted_by_the_truncated_importance_ratio(exports, tmp_path):
    module = rl_module(exports, explore_epsilon=0.5, entropy_coef=0.0, replay_episodes=0)
    datamodule = data()
    fit = trainer(tmp_path, 1)
    fit.fit(module, datamodule=datamodule)
    episodes = module.rollout(next(iter(datamodule.train_dataloader())))
    steps = [step for episode in episodes for step in episode.steps]
    assert any(abs(s.behaviour_logprob - s.logprob) > 1e-3 for s in steps)  # the behaviour policy differs
    batch = episodes_to_batch(episodes, datamodule.encoder.pad_id)

    def loss(behaviour_shift: float, clip: float | None) -> float:
        module.hparams.importance_clip = clip
        shifted = {**batch, "behaviour_logprobs": batch["old_logprobs"] + behaviour_shift}
        return float(module.policy_loss(shifted)[1]["policy_loss"])

    on_policy = loss(0.0, 1.0)
    assert loss(math.log(10), 1.0) == pytest.approx(on_policy / 10, rel=1e-3)  # ratio 0.1 scales the step down
    assert loss(-math.log(10), 1.0) == pytest.approx(on_policy, rel=1e-3)  # ratio 10 is truncated at 1
    assert loss(math.log(10), None) == pytest.approx(on_policy, rel=1e-3)  # uncorrected: as if on-policy


def test_group_baseline_plays_each_task_group_size_times(exports, tmp_path):
    module = rl_module(exports, baseline="group", group_size=4, replay_episodes=0)
    datamodule = data()
    trainer(tmp_path, 1).fit(module, datamodule=datamodule)
    batch = next(iter(datamodule.train_dataloader()))
    episodes = module.rollout(batch)
    assert len(episodes) == len(batch["seeds"])
    assert [e.seed for e in episodes] == [s for s in batch["seeds"][: len(batch["seeds"]) // 4] for _ in range(4)]
    with pytest.raises(ValueError, match="group_size"):
        rl_module(exports, baseline="group", group_size=1)
    with pytest.raises(ValueError, match="must divide data.episodes_per_step"):
        trainer(tmp_path / "odd", 1).fit(rl_module(exports, group_size=3), datamodule=data())


def test_training_rollouts_can_read_sampled_reflections_while_held_out_play_reads_greedy_ones(exports, tmp_path):
    module = rl_module(exports, reflection_temperature=1.5, replay_episodes=0)
    datamodule = data()
    trainer(tmp_path, 1).fit(module, datamodule=datamodule)
    greedy = module.agent.reflector
    assert greedy.cache_size > 0 and module.agent.explore_reflector.cache_size == 0
    module.train()
    episodes = module.rollout(next(iter(datamodule.train_dataloader())))
    turns = [t for e in episodes for t in e.transcript]
    read = [t["reflection"] for t in turns]
    assert read != greedy([t["observation"] for t in turns])  # sampled at 1.5, not the greedy analysis
    module.eval()
    held_out = module.play(datamodule.make_eval_envs("val", 2), [0, 1], "full", greedy=True)
    turns = [t for r in held_out for t in r.transcript]
    assert [t["reflection"] for t in turns] == greedy([t["observation"] for t in turns])
    with pytest.raises(ValueError, match="reflection_temperature"):
        rl_module(exports, reflection_temperature=-1.0)


def test_value_baseline_and_kl_penalty_train_only_the_policy_and_its_value_head(exports, tmp_path):
    module = rl_module(exports, baseline="value", kl_coef=0.1, lr=1e-2)
    fit = trainer(tmp_path, 3)
    fit.fit(module, datamodule=data())
    optimized = {id(p) for group in fit.optimizers[0].param_groups for p in group["params"]}
    assert {id(p) for p in module.value_head.parameters()} <= optimized
    assert not optimized & {id(p) for p in module.reference_model.parameters()}
    assert float(module.value_head.weight.abs().sum()) > 0  # the value head learned from zero
    assert fit.callback_metrics["train/kl"] > 0  # three steps at a high rate moved the policy off its start
    initial, _ = load_backbone(BackboneSpec(name_or_path=str(exports[1])))
    reference = module.reference_model.state_dict()
    assert all(torch.equal(reference[k], v) for k, v in initial.state_dict().items())  # the start, frozen
    assert not any(k.startswith("reference_model.") for k in module.state_dict())  # rebuilt from the export


def test_a_reflection_export_with_another_tokenizer_is_refused_before_training(exports, tmp_path):
    from rl_fixtures import TINY

    from lightning_modules import ReflectionSFTModule, TinyGPT2Spec

    other = TinyGPT2Spec(**{**TINY.__dict__, "vocab_size": 350})
    trainer(tmp_path, 1).fit(ReflectionSFTModule(BackboneSpec(tiny=other), export_dir=str(tmp_path / "other")),
                             datamodule=data())  # fmt: skip
    with pytest.raises(ValueError, match="different tokenizer"):
        trainer(tmp_path, 1).fit(rl_module(exports, reflection=str(tmp_path / "other")), datamodule=data())


def test_no_reflection_baseline_prompts_have_no_analysis(exports, tmp_path):
    module = rl_module(exports, reflection=None)
    datamodule = data()
    trainer(tmp_path, 1).fit(module, datamodule=datamodule)
    episodes = module.rollout(next(iter(datamodule.train_dataloader())))
    text = datamodule.encoder.tokenizer.decode(episodes[0].steps[0].prompt_ids)
    assert "# Analyze:" not in text and text.endswith("# Action:")
    assert module.reflection_model is None


def test_curriculum_switches_clears_replay_and_rejects_unknown_stages(exports, tmp_path):
    stages = [CurriculumStage("pickup", steps=1), CurriculumStage("dropoff", steps=1), CurriculumStage("full")]
    curriculum = CurriculumCallback(stages)
    module = rl_module(exports)
    cleared = []
    module.clear_replay = lambda: cleared.append(True)
    datamodule = data()
    trainer(tmp_path, 3, callbacks=[curriculum]).fit(module, datamodule=datamodule)
    assert curriculum.index == 2 and datamodule.stage == "full" and len(cleared) == 2
    with pytest.raises(ValueError, match="unknown to ReflectRL/DangerousTaxi-v0"):
        trainer(tmp_path, 1, callbacks=[CurriculumCallback([CurriculumStage("moon")])]).fit(
            rl_module(exports), datamodule=data()
        )


def test_a_missing_reflection_export_names_the_reflection_option(exports, tmp_path):
    module = rl_module(exports, reflection=str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match="reflection") as error:
        trainer(tmp_path, 1).fit(module, datamodule=data())
    assert "name_or_path" not in str(error.value)
