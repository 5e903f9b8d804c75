"""The one held-out evaluation: success with its interval, groups, and how the policy used its reflection."""

import pytest
from rl_fixtures import data, trainer

from datamodules.rollout import EpisodeResult, play_episodes
from lightning_modules import BackboneSpec, PolicySFTModule
from lightning_modules.evaluation import episode_counts, evaluate_player, outcome_metrics, results_table


def turn(choice, recommended, oracle):
    return {"choice": choice, "recommended": recommended, "oracle": oracle, "reward": 0.0}


def test_reflection_metrics_count_following_wrong_recommendations_and_overruling_them():
    turns = [
        turn(0, 0, 0),  # right recommendation, followed
        turn(1, 1, 0),  # wrong recommendation, followed
        turn(0, 1, 0),  # wrong recommendation, overruled (rightly)
        turn(2, 1, 0),  # wrong recommendation, overruled (wrongly)
        turn(0, None, 0),  # the reflection named no admissible action
    ]
    results = [EpisodeResult(1, True, 1.0, 3, turns[:3]), EpisodeResult(2, False, -1.0, 2, turns[3:])]
    metrics = outcome_metrics("val/", "", episode_counts(results))
    assert metrics["val/success_rate"] == 0.5 and metrics["val/episode_length"] == 2.5
    assert metrics["val/follows_reflection"] == 2 / 4
    assert metrics["val/wrong_reflection_rate"] == 3 / 4
    assert metrics["val/overrules_wrong_reflection"] == 2 / 3
    assert metrics["val/success_rate_ci_low"] < 0.5 < metrics["val/success_rate_ci_high"]
    no_reflection = outcome_metrics("val/", "", episode_counts([EpisodeResult(3, True, 1.0, 1, [turn(0, None, 0)])]))
    assert "val/follows_reflection" not in no_reflection  # nothing to follow: no number rather than a made-up 0


class TeacherFollower:
    """Reads the teacher's reflection and takes the action it recommends, or always the first action."""

    def __init__(self, obey: bool) -> None:
        self.obey = obey

    def play(self, envs, seeds, stage, greedy):
        def act(turns):
            choices = [t.oracle if self.obey else 0 for t in turns]
            return choices, [{"reflection": t.reflection} for t in turns]

        return play_episodes(envs, seeds, act, stage=stage, teacher_reflections=True)


@pytest.mark.parametrize("obey", [True, False])
def test_evaluating_a_player_on_held_out_episodes_measures_whether_it_follows_its_reflection(obey):
    datamodule = data(val_episodes=4)
    evaluation = evaluate_player(TeacherFollower(obey), datamodule, "val", 6, modes=("greedy",))
    metrics = evaluation.metrics
    assert [r["seed"] for r in evaluation.records] == datamodule.eval_seeds("val", 6)
    assert metrics["val/wrong_reflection_rate"] == 0.0  # the teacher recommends the oracle's action
    if obey:
        assert metrics["val/success_rate"] == 1.0 and metrics["val/follows_reflection"] == 1.0
    else:
        assert metrics["val/success_rate"] < 1.0 and metrics["val/follows_reflection"] < 1.0
    assert "val/success_rate_sampled" not in metrics
    table = results_table({"follower": metrics}, 6, "dangerous_taxi", "val")
    assert "follower" in table and f"{metrics['val/follows_reflection']:.0%}" in table.splitlines()[-1]


def test_policy_sft_can_train_on_the_reflection_model_s_own_reflections(exports, tmp_path):
    reflection, policy = exports
    module = PolicySFTModule(
        BackboneSpec(name_or_path=str(policy)), reflection=str(reflection), own_reflections=1.0,
        export_dir=str(tmp_path / "export"),
    )  # fmt: skip
    run = trainer(tmp_path, 2)
    run.fit(module, datamodule=data(teacher_episodes=2))
    assert run.callback_metrics["train/own_reflection_share"] == 1.0
    assert 0.0 <= run.callback_metrics["train/own_reflection_wrong"] <= 1.0
    assert module.agent.reflector.generated > 0  # the frozen model wrote them (greedy, memoised)


def test_own_reflections_need_a_reflection_model(exports, tmp_path):
    _, policy = exports
    module = PolicySFTModule(BackboneSpec(name_or_path=str(policy)), reflection="teacher", own_reflections=0.5)
    with pytest.raises(ValueError, match="own_reflections=0.5 needs the reflection model"):
        trainer(tmp_path, 1).fit(module, datamodule=data(teacher_episodes=2))
    with pytest.raises(ValueError, match="own_reflections must be a share"):
        PolicySFTModule(own_reflections=1.5)
    baseline = PolicySFTModule(BackboneSpec(name_or_path=str(policy)), reflection=None, own_reflections=0.5)
    trainer(tmp_path, 1).fit(baseline, datamodule=data(teacher_episodes=2))  # no analysis at all: nothing to mix
    assert baseline.own_reflector is None


def test_policy_sft_misleading_reflections_recommend_a_wrong_action_labelled_with_the_oracle_s(exports, tmp_path):
    from datamodules.prompt import recommended_action

    _, policy = exports
    module = PolicySFTModule(
        BackboneSpec(name_or_path=str(policy)), reflection="teacher", misleading_reflections=1.0,
        export_dir=str(tmp_path / "export"),
    )  # fmt: skip
    read = []
    encode = module._encode

    def recording(turns, reflections):
        read.extend(zip(turns, reflections, strict=True))
        return encode(turns, reflections)

    module._encode = recording
    run = trainer(tmp_path, 2)
    run.fit(module, datamodule=data(teacher_episodes=2))
    trained = [(t, r) for t, r in read if r is not None and len(t.actions) > 1]
    assert trained and run.callback_metrics["train/misleading_share"] > 0.5
    misled = [recommended_action(r, t.actions) != t.oracle for t, r in trained]
    assert sum(misled) / len(misled) > 0.9  # the teacher's turns all recommended the oracle's action before
    with pytest.raises(ValueError, match="misleading_reflections must be a share"):
        PolicySFTModule(misleading_reflections=-0.1)
