import gymnasium as gym
import numpy as np
import pytest

from environments.check import check_environment, make_environment


class Sloppy(gym.Env):
    """Breaks the contract on purpose: integer actions texts, an oracle out of range, a different episode per reset."""

    observation_space = gym.spaces.Text(max_length=100)
    action_space = gym.spaces.Discrete(4)

    def __init__(self, fix: str | None = None) -> None:
        self.fix, self.turn = fix, 0

    def _info(self):
        actions = ["go north", "go south"] if self.fix == "actions" else [1, 2]
        return {"actions": actions, "oracle_action": 1 if self.fix == "actions" else 5}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.turn = 0
        # ignores the seed: every reset starts somewhere new
        return f"room {np.random.randint(1000)}", self._info()

    def step(self, action):
        self.turn += 1
        done = self.turn >= 3
        return f"turn {self.turn}", 0.0, done, False, {**self._info(), **({"success": False} if done else {})}


def test_the_shipped_environments_follow_the_contract():
    report = check_environment("ReflectRL/DangerousTaxi-v0")
    assert report.ok, str(report)
    assert any("curriculum stage" in text for text in report.passed)


def test_each_broken_rule_is_reported_in_words():
    report = check_environment(Sloppy())
    assert not report.ok
    text = str(report)
    assert "info['actions'] must hold strings, found int" in text
    assert "no teacher_reflection()" in text and "no curriculum stages" in text
    fixed = check_environment(Sloppy(fix="actions"))
    problems = "\n".join(fixed.failures)
    assert "two episodes with seed 0 and the same actions differed" in problems
    assert "a non-integer action must raise ValueError" in problems
    assert "info['actions']" not in problems


def test_environments_are_named_by_id_or_class_path_with_clear_errors():
    assert make_environment("tests.environments.test_check:Sloppy").fix is None
    with pytest.raises(ValueError, match="registered gymnasium id"):
        make_environment("NoSuchEnv")
    with pytest.raises(ValueError, match="Cannot import environment class"):
        make_environment("tests.environments.test_check:Missing")
    with pytest.raises(ValueError, match="Pass its constructor arguments"):
        make_environment("ReflectRL/AutoExplore-v0")


def test_check_env_command_prints_the_report_and_fails_on_a_broken_environment(capsys):
    from lightning_modules.cli import main

    assert main(["check-env", "examples.text_maze:TextMazeEnv", "--kwargs", '{"stage": "small"}']) == 0
    assert "follows the contract" in capsys.readouterr().out
    assert main(["check-env", "tests.environments.test_check:Sloppy"]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["check-env", "nowhere"]) == 1
    assert "registered gymnasium id" in capsys.readouterr().err


class NoTeacher(gym.Env):
    """Follows the contract but has neither an oracle nor a teacher (with_oracle=True: an oracle, still no teacher)."""

    observation_space = gym.spaces.Text(max_length=100)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, with_oracle: bool = False) -> None:
        self.with_oracle = with_oracle

    def _info(self):
        return {"actions": ["wait", "go"], **({"oracle_action": 1} if self.with_oracle else {})}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return "a room", self._info()

    def step(self, action):
        return "a room", 0.0, True, False, {**self._info(), "success": False}


class TeacherIndex(NoTeacher):
    """An oracle and a ``teacher_action`` (by default 2: outside the two admissible actions)."""

    def __init__(self, teacher_action=2) -> None:
        super().__init__(with_oracle=True)
        self.teacher_action = teacher_action

    def _info(self):
        return {**super()._info(), "teacher_action": self.teacher_action}


@pytest.mark.parametrize("teacher_action", [2, -1, "1"])
def test_a_teacher_action_outside_the_admissible_actions_is_reported(teacher_action):
    failures = "\n".join(check_environment(TeacherIndex(teacher_action)).failures)
    assert f"info['teacher_action'] = {teacher_action!r} is not an index into the 2 admissible actions" in failures
    assert "teacher_action" not in "\n".join(check_environment(TeacherIndex(1)).failures)


def test_a_stage_says_what_the_environment_lacks_and_which_alternative_exists(tmp_path, capsys):
    from lightning_modules.cli import main

    def stage1(env_kwargs: str) -> str:
        code = main(["fit", "--config", "configs/dangerous_taxi/reflection_sft.yaml",
                     "--data.env_id=tests.environments.test_check:NoTeacher", f"--data.env_kwargs={env_kwargs}",
                     "--data.teacher_episodes=null", "--data.num_envs=2", "--trainer.max_steps=1",
                     f"--trainer.logger.init_args.save_dir={tmp_path}",
                     "--model.init_args.backbone.tiny.n_embd=32"])  # fmt: skip
        assert code == 1
        return capsys.readouterr().err

    no_oracle = stage1("{}")
    assert "no info['oracle_action']" in no_oracle and "--data.dataset" in no_oracle
    no_teacher = stage1('{"with_oracle": true}')
    assert "NoTeacher has no rule-based teacher" in no_teacher and "--data.teacher" in no_teacher
