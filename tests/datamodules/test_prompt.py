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


def test_teacher_action_needs_an_oracle():
    with pytest.raises(ValueError, match="oracle_action"):
        teacher_action({"actions": ["a"]}, np.random.default_rng(0), 0.1)
