"""AutoExplore v1: evidence and memory in the observation, a grounded search teacher, correctable mistakes."""

import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from auto_explore_fixtures import make_repo, make_wide_repo, write

import environments  # noqa: F401  (registers ReflectRL/...)
from environments.auto_explore import AutoExploreV1Env, Task, generate_tasks
from environments.auto_explore.actions import parse_action
from environments.auto_explore.env_v1 import DEFAULT_HORIZON
from environments.check import check_environment

REPO_ROOT = Path(__file__).resolve().parents[2]
SMALL = {"max_actions": 32, "horizon": 15, "cat_lines": 4, "cat_chars": 200, "max_listing_chars": 400}


def make_misleading_repo(root: Path) -> Path:
    """Names that promise the answer where it is not: ``config/``, ``parser.py``, ``tables/`` hold other things."""
    repo = root / "misleading"
    write(repo / "config" / "parser.py", "def parse_arguments():\n    pass\n")
    write(repo / "config" / "config_parser.py", "class ConfigLoader:\n    pass\n")
    write(repo / "misc" / "helpers.py", "def parse_config_file():\n    pass\n\n\nclass TableWriter:\n    pass\n")
    write(repo / "tables" / "writer.py", "def write_rows():\n    pass\n")
    write(repo / "tables" / "prices.csv", "unit_cost,sku\n1,a\n")
    write(repo / "misc" / "old" / "legacy.csv", "# legacy export\r\rprice_history,sku_code\r1,a\r")
    write(repo / "docs" / "prices.md", "# Unit costs explained\n\ntext\n")
    write(repo / "README.md", "# Price history notes\n")
    return repo


def trees(tmp_path: Path) -> list[Path]:
    return [make_repo(tmp_path), make_misleading_repo(tmp_path), make_wide_repo(tmp_path), REPO_ROOT / "environments"]


def mentioned_names(reflection: str) -> list[str]:
    """The names a reflection states as facts: every backticked text, split into its path components."""
    names = []
    for quoted in re.findall(r"`([^`]+)`", reflection):
        quoted = re.sub(r"^(def|class|cd|cat|id) ", "", quoted)
        names += [part for part in re.split(r"[/,]\s*", quoted) if part and part != ".."]
    return names


def evidence_line(task) -> str:
    return {"function": f"def {task.subject}", "class": f"class {task.subject}"}.get(task.kind, f"- {task.subject}")


def play_teacher(env: AutoExploreV1Env, task, rng: np.random.Generator, mistake_prob: float):
    """Play one episode with the teacher's behaviour (mistakes from info['mistake_actions']); yield each turn."""
    observation, info = env.reset(options={"task_id": task.task_id})
    seen = [observation]
    while True:
        reflection = env.teacher_reflection()
        mistakes = info["mistake_actions"]
        mistake = bool(mistakes) and rng.random() < mistake_prob
        action = int(mistakes[int(rng.integers(len(mistakes)))]) if mistake else info["teacher_action"]
        yield seen, info, reflection, action, mistake
        observation, _, terminated, truncated, info = env.step(action)
        seen.append(observation)
        if terminated or truncated:
            assert not mistake or truncated, "a deliberate mistake ended the episode"
            return


@pytest.mark.parametrize("mistake_prob", [0.0, 0.3])
def test_every_fact_a_reflection_states_was_shown_and_id_follows_evidence(tmp_path, mistake_prob):
    rng = np.random.default_rng(0)
    episodes = mistakes_seen = 0
    for root in trees(tmp_path):
        tasks = generate_tasks(root, max_tasks=40, max_actions=32, evidence_chars=200)
        env = AutoExploreV1Env(tasks, **SMALL)
        for task in env.tasks:
            episodes += 1
            for seen, info, reflection, action, mistake in play_teacher(env, task, rng, mistake_prob):
                shown = "\n".join(seen).casefold()
                for name in mentioned_names(reflection):
                    assert name.casefold() in shown, (task.task_id, name, reflection)
                planned = info["actions"][info["teacher_action"]]
                assert reflection.endswith(f"Next: {planned}" + ("" if planned.endswith(".") else "."))
                command = parse_action(info["actions"][action])
                if not mistake and command.verb == "id":
                    read = [obs for obs in seen if f"of {command.name} (" in obs or f"of {command.name}:" in obs]
                    assert read and evidence_line(task).casefold() in read[-1].casefold(), (task.task_id, seen[-1])
                if mistake:
                    mistakes_seen += 1
                    assert command.verb != "id"
                    assert action not in (info["teacher_action"], info["oracle_action"])
    assert episodes >= 60
    assert (mistakes_seen > 20) == (mistake_prob > 0)


def test_corrective_reflection_follows_a_mistake(tmp_path):
    repo = make_misleading_repo(tmp_path)
    tasks = generate_tasks(repo, max_tasks=40, evidence_chars=200)
    env = AutoExploreV1Env(tasks, **SMALL)
    task = next(task for task in env.tasks if task.subject == "parse_config_file")
    _, info = env.reset(options={"task_id": task.task_id})
    wrong = [info["actions"][i] for i in info["mistake_actions"]]
    assert info["actions"][info["teacher_action"]] == "cd config"  # the name misleads the search
    assert "cd tables" in wrong and not any(text.startswith("id ") for text in wrong)
    observation, _, terminated, _, info = env.step(info["actions"].index("cd tables"))
    assert not terminated
    reflection = env.teacher_reflection()
    assert "tables" in reflection and "the plan was `cd config`" in reflection
    observation, *_, info = env.step(info["actions"].index("cat writer.py"))
    assert "def write_rows" in observation
    reflection = env.teacher_reflection()
    assert "`def parse_config_file`" in reflection and "writer.py" in reflection


def test_teacher_succeeds_where_names_lead_and_backtracks_on_a_miss(tmp_path):
    tasks = generate_tasks(make_misleading_repo(tmp_path), max_tasks=40, evidence_chars=200)
    env = AutoExploreV1Env(tasks, **{**SMALL, "horizon": DEFAULT_HORIZON})
    results = {}
    for task in env.tasks:
        _, info = env.reset(options={"task_id": task.task_id})
        commands, done = [], False
        while not done:
            commands.append(info["actions"][info["teacher_action"]])
            _, _, terminated, truncated, info = env.step(info["teacher_action"])
            done = terminated or truncated
        results[task.subject] = (info["success"], commands)
    success, commands = results["parse_config_file"]
    assert success and "cd .." in commands and commands.index("cd config") < commands.index("cd misc")
    # no name matches `helpers.py`: it is read only after every listed folder, `old/` and `tables/` too, was entered
    assert commands.index("cat helpers.py") > max(commands.index("cd old"), commands.index("cd tables"))
    assert sum(ok for ok, _ in results.values()) >= 0.8 * len(results)


def test_observation_shows_the_file_view_and_the_memory(tmp_path):
    repo = make_repo(tmp_path)
    tasks = generate_tasks(repo, max_tasks=40, evidence_chars=200)
    env = AutoExploreV1Env(tasks, memory_length=2, **SMALL)
    observation, info = env.reset(options={"task_id": tasks[0].task_id})
    assert "Explored (latest first): (nothing yet)" in observation
    for command in ("cd src", "cd pkg", "cat core.py"):
        observation, *_, info = env.step(info["actions"].index(command))
    assert "Explored (latest first): read /src/pkg/core.py; entered /src/pkg\n" in observation + "\n"
    assert "L4 class Engine: start L5" in observation and "import os" not in observation
    observation, *_, info = env.step(info["actions"].index("cd .."))
    assert "Explored (latest first): entered /src; read /src/pkg/core.py" in observation


def test_the_cut_keeps_the_question_and_the_directory(tmp_path):
    long = "d" * 90
    repo = tmp_path / "long"
    write(repo / f"{long}1" / f"{long}2" / f"{long}3" / "answer_module.py", "def find_the_answer():\n    pass\n")
    for i in range(8):
        write(repo / f"{long}1" / f"{long}2" / f"{long}3" / f"{'f' * 90}{i}.py", f"def other_{i:02d}():\n    pass\n")
    question = "Which file defines `find_the_answer`? " + "It is somewhere below the long folders. " * 11
    target = f"{long}1/{long}2/{long}3/answer_module.py"
    tasks = [Task("long", str(repo), question, [target], kind="function", subject="find_the_answer")]
    limit = 500 + 16 + 32 + 240 + 256
    env = AutoExploreV1Env(tasks, max_listing_chars=16, cat_chars=32, history_length=8, max_observation_chars=limit)
    observation, info = env.reset()
    head = f"Question: {env.task.question}\nDir: "
    cut = False
    for _ in range(8):
        action = next(i for i, text in enumerate(info["actions"]) if text.startswith(("cd d", "cat")))
        observation, *_, info = env.step(action)
        assert len(observation) <= limit and observation.startswith(head)
        assert observation.splitlines()[1] == f"Dir: {info['cwd']}"
        cut = cut or observation.endswith("[... cut]")
    assert cut


def test_gym_make_without_arguments_and_the_checker(tmp_path):
    env = gym.make("ReflectRL/AutoExplore-v1")
    assert env.unwrapped.available_stages == ("0", "1", "2", "3", "all")
    report = check_environment(env)
    assert report.ok, str(report)
    shallow = tmp_path / "shallow"
    write(shallow / "top.py", "def top_level_function():\n    pass\n")
    write(shallow / "pkg" / "inner.py", "def inner_function():\n    pass\n")
    report = check_environment(AutoExploreV1Env({"roots": [str(shallow)]}))
    assert report.ok, str(report)
    notes = "\n".join(report.notes)
    assert "stage '2' is not available" in notes and "stage '3' is not available" in notes
    assert "target depths [0, 1]" in notes


def test_bad_arguments_say_what_fits():
    with pytest.raises(ValueError, match="memory_length"):
        AutoExploreV1Env({"roots": [str(REPO_ROOT / "environments")]}, memory_length=-1)
    with pytest.raises(ValueError, match="memory line"):
        AutoExploreV1Env({"roots": [str(REPO_ROOT / "environments")]}, max_observation_chars=2000)


def test_sft_turns_follow_the_teacher_not_the_oracle(tmp_path):
    from datamodules.prompt import recommended_action
    from datamodules.rollout import TeacherStream

    tasks = generate_tasks(make_misleading_repo(tmp_path), max_tasks=40, evidence_chars=200)
    envs = [AutoExploreV1Env(tasks, **SMALL) for _ in range(2)]
    stream = TeacherStream(envs, seed=0, mistake_prob=0.2, shuffle_actions=True)
    labels = []
    for episode in stream.episodes(12):
        for turn in episode:
            assert recommended_action(turn.reflection, turn.actions) == turn.oracle
            if turn.step == 0:
                labels.append((turn.observation.splitlines()[0], turn.actions[turn.oracle]))
    # at the start the oracle would say `cd tables` for `write_rows`; the teacher follows the misleading name
    at_root = [label for question, label in labels if "`write_rows`" in question]
    assert at_root and set(at_root) == {"cd config"}
    mistakes = [turn for episode in stream.episodes(12) for turn in episode if turn.negative]
    assert mistakes and all(not turn.actions[turn.taken].startswith("id ") for turn in mistakes)
