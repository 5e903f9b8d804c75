import numpy as np
import pytest

from datamodules.behaviour import teacher_action
from datamodules.prompt import (
    ACTION_LABELS,
    ACTION_MARKER,
    ANALYZE_MARKER,
    action_label,
    format_action_answer,
    format_policy_prompt,
    format_reflection_prompt,
    label_index,
    recommended_action,
    with_recommendation,
)


def test_policy_prompt_layout_with_and_without_reflection():
    prompt = format_policy_prompt("Taxi at row 1.", ["go south", "go north"], "Go south first.")
    assert prompt == "Taxi at row 1.\n# Analyze:\nGo south first.\n# Actions:\nA. go south\nB. go north\n# Action:"
    no_reflection = format_policy_prompt("Taxi at row 1.", ["go south", "go north"], None)
    assert ANALYZE_MARKER not in no_reflection
    assert no_reflection.endswith(ACTION_MARKER)
    assert (prompt + format_action_answer(1)).endswith("# Action: B")


def test_reflection_prompt_is_the_policy_prompt_prefix():
    observation = "Taxi at row 1."
    reflection = "Go south first."
    assert format_policy_prompt(observation, ["x"], reflection).startswith(
        format_reflection_prompt(observation) + reflection
    )


def test_labels_are_unique_and_round_trip():
    assert len(set(ACTION_LABELS)) == len(ACTION_LABELS) >= 64
    for index in (0, 25, 26, 63):
        assert label_index(action_label(index), 64) == index
    assert label_index(" b ", 3) == 1
    with pytest.raises(ValueError, match="not an action label"):
        label_index("D", 3)
    with pytest.raises(ValueError, match="No action label"):
        action_label(len(ACTION_LABELS))


def test_teacher_action_mistakes_are_never_the_oracle_and_follow_the_probability():
    rng = np.random.default_rng(0)
    info = {"actions": ["a", "b", "c", "d"], "oracle_action": 2}
    picks = [teacher_action(info, rng, 0.3) for _ in range(4000)]
    mistakes = [action for action, mistake in picks if mistake]
    assert all(action != 2 for action in mistakes)
    assert set(mistakes) == {0, 1, 3}
    assert 0.27 < len(mistakes) / len(picks) < 0.33
    assert all(action == 2 for action, mistake in picks if not mistake)
    assert {teacher_action(info, rng, 0.0) for _ in range(50)} == {(2, False)}


def test_teacher_mistakes_come_from_the_environments_mistake_actions():
    rng = np.random.default_rng(0)
    info = {"actions": ["a", "b", "c", "d"], "oracle_action": 2, "mistake_actions": [3]}
    picks = [teacher_action(info, rng, 0.5) for _ in range(400)]
    assert {action for action, mistake in picks if mistake} == {3}
    none_left = {**info, "mistake_actions": []}  # no safe wrong action: the teacher plays the oracle
    assert {teacher_action(none_left, rng, 1.0) for _ in range(20)} == {(2, False)}


def test_dangerous_taxi_teacher_never_errs_fatally_and_every_mistake_is_corrected():
    from datamodules.rollout import TeacherStream, make_envs

    stream = TeacherStream(make_envs("ReflectRL/DangerousTaxi-v0", {}, 4), seed=0, mistake_prob=0.3)
    episodes = stream.episodes(40)
    assert sum(t.negative for e in episodes for t in e) > 20
    for episode in episodes:
        # a mistake never ends the episode (only the 20-turn horizon can cut it): a corrective turn follows it
        assert not episode[-1].negative or episode[-1].step == 19
        for before, after in zip(episode, episode[1:], strict=False):
            if before.negative:
                assert "mistake" in after.reflection or "wrong" in after.reflection


def test_teacher_action_needs_an_oracle():
    with pytest.raises(ValueError, match="oracle_action"):
        teacher_action({"actions": ["a"]}, np.random.default_rng(0), 0.1)


def test_a_reflection_can_be_made_to_recommend_another_action_keeping_its_reasoning():
    actions = ["go south", "go north", "pick up the passenger"]
    reflection = "Going south hits a wall, so the best action now is to go north."
    swapped = with_recommendation(reflection, actions, 0)
    assert swapped == "Going south hits a wall, so the best action now is to go south."
    assert recommended_action(swapped, actions) == 0
    assert with_recommendation("Go North.", actions, 2) == "pick up the passenger."  # matched case-insensitively
    assert with_recommendation("The passenger is far away.", actions, 0) is None  # recommends nothing to swap
