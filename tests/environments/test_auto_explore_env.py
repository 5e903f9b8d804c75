import re
import time
import warnings

import gymnasium as gym
import numpy as np
import pytest
from auto_explore_fixtures import make_repo, make_wide_repo
from gymnasium.utils.env_checker import check_env

import environments  # noqa: F401  (registers ReflectRL/...)
from environments.auto_explore import AutoExploreEnv, Task, generate_tasks, package_root
from environments.auto_explore.actions import route
from environments.auto_explore.teacher import GOAL


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path)


@pytest.fixture
def tasks(repo):
    return generate_tasks(repo, seed=0, max_per_file=5)


def by_subject(tasks, subject):
    return next(task for task in tasks if task.subject == subject)


def act(env, info, text):
    return env.step(info["actions"].index(text))


def test_check_env_passes(tasks):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no gymnasium warning either
        check_env(gym.make("ReflectRL/AutoExplore-v0", tasks=tasks).unwrapped, skip_render_check=False)
    env = gym.make("ReflectRL/AutoExplore-v0", tasks=tasks, render_mode="ansi")
    env.reset(seed=0)
    assert "Actions:" in env.render()


def test_observation_and_info(tasks):
    env = AutoExploreEnv(tasks)
    task = by_subject(tasks, "slugify_text")
    observation, info = env.reset(options={"task_id": task.task_id})
    assert observation.splitlines() == [
        f"Question: {task.question}",
        "Dir: /",
        "Listing: data/ docs/ src/ tests/ vendor/ README.md setup.py",
        "Recent: (none)",
    ]
    assert info["actions"] == [
        "cd data",
        "cd docs",
        "cd src",
        "cd tests",
        "cd vendor",
        "cat README.md",
        "cat setup.py",
        "id README.md",
        "id setup.py",
    ]
    assert info["actions"][info["oracle_action"]] == "cd src"
    assert (info["success"], info["invalid_action"], info["stage"], info["task_id"], info["cwd"]) == (
        False,
        False,
        "all",
        task.task_id,
        "/",
    )
    observation, reward, terminated, truncated, info = act(env, info, "cd src")
    observation, reward, terminated, truncated, info = act(env, info, "cd pkg")
    assert info["cwd"] == "/src/pkg" and info["actions"][0] == "cd .."
    assert "Listing: io/ utils/ __init__.py alpha.py beta.py blob.py core.py shapes.py" in observation
    observation, reward, terminated, truncated, info = act(env, info, "cat core.py")
    assert observation.endswith(
        "Recent: cd src; cd pkg; cat core.py\nOutput:\nimport os\n\n\nclass Engine:\n"
        "    def start(self):\n        pass\n\n\ndef run_engine(engine):\n"
        "    return engine\n[... truncated]"
    )
    observation, *_, info = act(env, info, "cat blob.py")
    assert observation.endswith("Output:\n(binary file)")
    observation, *_, info = act(env, info, "cd utils")
    assert "Recent: cat core.py; cat blob.py; cd utils" in observation and "Output" not in observation
    assert env.observation_space.contains(observation)


def test_rewards_and_termination(tasks):
    env = AutoExploreEnv(
        tasks,
        step_reward=-0.05,
        success_reward=2.0,
        wrong_answer_reward=-3.0,
        invalid_action_reward=-0.5,
        timeout_reward=-7.0,
        horizon=4,
    )
    task = by_subject(tasks, "build_package")
    _, info = env.reset(options={"task_id": task.task_id})
    _, reward, terminated, truncated, info = act(env, info, "cat README.md")
    assert (reward, terminated, truncated) == (-0.05, False, False)
    _, reward, terminated, truncated, info = env.step(40)  # inside Discrete(64), outside the 9 actions
    assert (reward, terminated, truncated, info["invalid_action"]) == (-0.5, False, False, True)
    assert info["cwd"] == "/" and len(info["actions"]) == 9
    _, reward, terminated, truncated, info = act(env, info, "id setup.py")
    assert (reward, terminated, truncated, info["success"], info["invalid_action"]) == (2.0, True, False, True, False)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    _, info = env.reset(options={"task_id": task.task_id})
    observation, reward, terminated, truncated, info = act(env, info, "id README.md")
    assert (reward, terminated, info["success"]) == (-3.0, True, False)
    assert "Wrong: README.md" in observation
    _, info = env.reset(options={"task_id": task.task_id})
    rewards = [act(env, info, "cat README.md")[1] for _ in range(3)]
    observation, reward, terminated, truncated, info = env.step(0)
    assert rewards == [-0.05] * 3
    assert (reward, terminated, truncated, info["success"]) == (-0.05 - 7.0, False, True, False)
    assert "Out of steps" in observation


def test_invalid_values_raise(tasks):
    env = AutoExploreEnv(tasks, max_actions=32)
    env.reset(seed=0)
    for bad in [1.5, "0", None, -1, 32, 100, True, np.float32(1.0), np.array([1, 2])]:
        with pytest.raises(ValueError, match="action"):
            env.step(bad)
    env.step(np.int64(0))
    env.step(np.array(0))
    with pytest.raises(RuntimeError, match="reset"):
        AutoExploreEnv(tasks).step(0)
    with pytest.raises(ValueError, match="max_actions"):
        AutoExploreEnv(tasks, max_actions=2)
    with pytest.raises(ValueError, match="horizon"):
        AutoExploreEnv(tasks, horizon=0)


def test_stages_seeds_and_task_ids(tasks):
    env = AutoExploreEnv(tasks)
    for stage in ("0", "1", "2", "3"):
        for seed in range(10):
            _, info = env.reset(seed=seed, options={"stage": stage})
            assert info["stage"] == stage and info["depth"] == int(stage)
    first = [env.reset(seed=seed, options={"stage": "2"}) for seed in range(5)]
    again = [env.reset(seed=seed, options={"stage": "2"}) for seed in range(5)]
    assert first == again
    assert len({info["task_id"] for _, info in (env.reset(seed=s) for s in range(40))}) > 5
    with pytest.raises(ValueError, match="Unknown curriculum stage '7'"):
        env.reset(options={"stage": "7"})
    with pytest.raises(ValueError, match="Unknown curriculum stage"):
        AutoExploreEnv(tasks, stage="hard")
    with pytest.raises(ValueError, match="Unknown task_id"):
        env.reset(options={"task_id": "nope"})
    with pytest.raises(ValueError, match="Unknown reset option"):
        env.reset(options={"level": 1})
    shallow = [task for task in tasks if task.depth <= 1]
    env = AutoExploreEnv(shallow)
    with pytest.raises(ValueError, match="stage '3' has no tasks"):
        env.reset(options={"stage": "3"})
    with pytest.raises(ValueError, match="no tasks"):
        AutoExploreEnv(shallow, stage="2")


def test_oracle_recovers_after_wandering(repo, tasks):
    env = AutoExploreEnv(tasks, horizon=60)
    rng = np.random.default_rng(0)
    for task in tasks:
        _, info = env.reset(options={"task_id": task.task_id})
        cwd = ()
        for _ in range(3):  # wander: take non-oracle cd's
            moves = [i for i, a in enumerate(info["actions"]) if a.startswith("cd") and i != info["oracle_action"]]
            if not moves:
                break
            choice = moves[int(rng.integers(len(moves)))]
            name = info["actions"][choice][3:]
            cwd = cwd[:-1] if name == ".." else cwd + (name,)
            _, _, _, _, info = env.step(choice)
            assert info["cwd"] == "/" + "/".join(cwd)
        expected = [a.text for a in route(cwd, tuple(task.targets[0].split("/")))]
        taken = []
        done = False
        while not done:
            taken.append(info["actions"][info["oracle_action"]])
            _, _, terminated, truncated, info = env.step(info["oracle_action"])
            done = terminated or truncated
        assert info["success"] and taken == expected


def test_action_budget_and_hidden_count(tmp_path):
    wide = make_wide_repo(tmp_path, dirs=40, files=80)
    tasks = generate_tasks(wide, seed=0, max_actions=16)
    env = AutoExploreEnv(tasks, max_actions=16)
    observation, info = env.reset(seed=0, options={"stage": "0"})
    assert info["actions"] == [f"cd d{i:02d}" for i in range(8)] + [f"cat f{i:02d}.py" for i in range(4)] + [
        f"id f{i:02d}.py" for i in range(4)
    ]
    assert (
        "Listing: d00/ d01/ d02/ d03/ d04/ d05/ d06/ d07/ f00.py f01.py f02.py f03.py (+108 not shown)" in observation
    )
    _, info = env.reset(seed=0, options={"stage": "1"})
    _, _, _, _, info = env.step(info["oracle_action"])
    assert info["actions"] == ["cd ..", f"cat mod{info['cwd'][2:]}.py", f"id mod{info['cwd'][2:]}.py"]
    big = AutoExploreEnv(generate_tasks(wide, seed=0), max_actions=64)
    observation, info = big.reset(seed=0, options={"stage": "0"})
    assert len(info["actions"]) == 64 and "(+72 not shown)" in observation


def test_observation_stays_in_the_space_on_a_real_package():
    tasks = generate_tasks(package_root("gymnasium"), seed=0, max_tasks=40)
    env = AutoExploreEnv(tasks, horizon=15)
    rng = np.random.default_rng(1)
    observation, info = env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while steps < 3000:
        action = info["oracle_action"] if rng.random() < 0.7 else int(rng.integers(len(info["actions"])))
        observation, _, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(observation)
        steps += 1
        if terminated or truncated:
            observation, info = env.reset(seed=steps)
    assert steps / (time.perf_counter() - start) > 1000  # thousands of steps/s with cached listings


def test_teacher_reflections(tasks):
    env = AutoExploreEnv(tasks, horizon=30)
    task = by_subject(tasks, "slugify_text")
    _, info = env.reset(options={"task_id": task.task_id})
    first = env.teacher_reflection()
    assert first.endswith("Next: cd src.") and "`slugify_text`" in first
    assert first == env.teacher_reflection()  # deterministic
    _, _, _, _, info = act(env, info, "cd tests")
    corrective = env.teacher_reflection()
    assert "tests" in corrective and "holds tests" in corrective and corrective.endswith("Next: cd ..")
    _, _, _, _, info = act(env, info, "cd ..")
    _, _, _, _, info = act(env, info, "cd src")
    _, _, _, _, info = act(env, info, "cd ..")  # a wrong cd ..
    assert "cd .." in env.teacher_reflection() and env.teacher_reflection().endswith("Next: cd src.")
    _, _, _, _, info = act(env, info, "cat README.md")
    text = env.teacher_reflection()
    assert "README.md" in text and text.endswith("Next: cd src.")
    _, _, _, _, info = env.step(60)
    assert (
        "wasted a turn" in env.teacher_reflection()
        or "invalid" in env.teacher_reflection().lower()
        or ("not an admissible" in env.teacher_reflection())
    )
    for step in ["cd src", "cd pkg", "cd utils"]:
        _, _, _, _, info = act(env, info, step)
    assert "strings.py" in env.teacher_reflection() and env.teacher_reflection().endswith("Next: id strings.py.")
    _, _, _, _, info = act(env, info, "cat strings.py")
    assert env.teacher_reflection().endswith("Next: id strings.py.")


def test_teacher_always_leads_to_the_oracle_and_varies(tasks):
    env = AutoExploreEnv(tasks, horizon=25)
    rng = np.random.default_rng(0)
    phrasings = {kind: set() for kind in GOAL}
    corrective = set()
    for episode in range(80):
        _, info = env.reset(seed=episode)
        task = env.task
        done = False
        while not done:
            text = env.teacher_reflection()
            assert text == env.teacher_reflection()
            oracle = info["actions"][info["oracle_action"]]
            assert re.search(rf"Next: {re.escape(oracle)}\.?$", text), (text, oracle)
            sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z`\"])", text)
            assert 1 <= len(sentences) <= 3, text
            for index, template in enumerate(GOAL[task.kind]):
                if text.startswith(template.format(s=task.subject, q=task.question)):
                    phrasings[task.kind].add(index)
            corrective.update(word for word in ("led away", "detour", "wrong folder") if word in text)
            action = info["oracle_action"] if rng.random() < 0.6 else int(rng.integers(len(info["actions"])))
            _, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
    for kind in ("function", "class", "column", "heading"):
        assert phrasings[kind] == {0, 1, 2}, kind
    assert len(corrective) == 3


def test_custom_multi_target_task(repo):
    task = Task(
        task_id="two",
        root=str(repo),
        question="Where is the project described?",
        targets=["docs/guide.md", "README.md"],
    )
    env = AutoExploreEnv([task])
    _, info = env.reset(seed=0)
    assert info["actions"][info["oracle_action"]] == "id README.md"
    _, _, _, _, info = act(env, info, "cd docs")
    assert info["actions"][info["oracle_action"]] == "id guide.md"  # the nearest target from here
    assert env.teacher_reflection().endswith("Next: id guide.md.")
    _, reward, terminated, _, info = act(env, info, "id guide.md")
    assert terminated and info["success"] and reward == 1.0
