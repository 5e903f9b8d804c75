import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from auto_explore_fixtures import independent_answers, make_repo, make_wide_repo

from environments.auto_explore import (
    DEFAULT_SPLIT_PACKAGES,
    AutoExploreEnv,
    build_splits,
    generate_tasks,
    load_tasks,
    package_root,
    split_roots,
)
from environments.auto_explore.generation import QUESTION_TEMPLATES, document_headings
from environments.auto_explore.generator import main


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path)


@pytest.fixture(scope="module")
def gymnasium_tasks():
    return generate_tasks(package_root("gymnasium"), seed=0, max_tasks=200)


def play_oracle(env, task):
    observation, info = env.reset(options={"task_id": task.task_id})
    taken = []
    done = False
    while not done:
        action = info["oracle_action"]
        taken.append(info["actions"][action])
        observation, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    return taken, info, reward


def test_synthetic_repo_tasks(repo):
    tasks = generate_tasks(repo, seed=0, max_per_file=5)
    by_subject = {task.subject: task for task in tasks}
    assert by_subject["Engine"].targets == ["src/pkg/core.py"] and by_subject["Engine"].kind == "class"
    assert by_subject["run_engine"].optimal_path == ["cd src", "cd pkg", "id core.py"]
    assert by_subject["fetch_remote"].kind == "function"  # async def
    assert by_subject["slugify_text"].depth == 3
    assert by_subject["closing_price"].targets == ["data/prices.csv"] and by_subject["closing_price"].kind == "column"
    assert by_subject["full_name"].targets == ["data/people.tsv"]
    assert by_subject["Configuration Options"].targets == ["docs/guide.md"]
    assert by_subject["Setext Title"].kind == "heading"
    assert by_subject["API Reference"].targets == ["docs/api.rst"]
    assert by_subject["build_package"].depth == 0
    never = {
        "shared_name",
        "clamp_value",
        "vendored_function",
        "hidden_function",
        "deep_function",
        "binary_looking",
        "test_engine",
        "date",
        "Getting Started",
        "Not A Heading",
        "start",
    }
    assert never & set(by_subject) == set()
    assert max(Counter(task.targets[0] for task in generate_tasks(repo, seed=0)).values()) <= 2
    assert Counter(task.depth for task in tasks).keys() <= {0, 1, 2, 3}
    for task in tasks:
        assert len(task.targets) == 1
        assert task.question in {t.format(task.subject) for t in QUESTION_TEMPLATES[task.kind]}
        assert independent_answers(repo, task.kind, task.subject) == set(task.targets), task


def test_every_question_has_one_answer_and_the_oracle_solves_it(repo, gymnasium_tasks):
    for root, tasks in [(repo, generate_tasks(repo, seed=1)), (package_root("gymnasium"), gymnasium_tasks)]:
        assert len(tasks) >= 10
        env = AutoExploreEnv(tasks, horizon=20)
        for task in tasks:
            assert independent_answers(root, task.kind, task.subject) == set(task.targets), task.task_id
            taken, info, reward = play_oracle(env, task)
            assert taken == task.optimal_path
            assert info["success"] and reward == 1.0


def test_gymnasium_tasks_are_balanced_across_depths(gymnasium_tasks):
    depths = Counter(task.depth for task in gymnasium_tasks)
    assert depths[1] >= 20 and depths[2] >= 20
    assert len({task.task_id for task in gymnasium_tasks}) == len(gymnasium_tasks)
    files = Counter(task.targets[0] for task in gymnasium_tasks)
    assert max(files.values()) <= 2


def test_same_seed_same_tasks(repo):
    first = generate_tasks(repo, seed=3, max_tasks=8)
    assert first == generate_tasks(repo, seed=3, max_tasks=8)
    others = [generate_tasks(repo, seed=seed, max_tasks=8) for seed in range(4, 8)]
    assert any(other != first for other in others)
    assert len(first) == 8
    assert len(generate_tasks(repo, seed=0, max_tasks=0)) == 0


def test_only_shown_entries_become_targets(tmp_path):
    wide = make_wide_repo(tmp_path)
    tasks = generate_tasks(wide, seed=0, max_tasks=500, max_actions=16)
    assert tasks
    env = AutoExploreEnv(tasks, max_actions=16, horizon=10)
    for task in tasks:
        taken, info, _ = play_oracle(env, task)
        assert info["success"], task
    shown_dirs = {task.targets[0].split("/")[0] for task in tasks if task.depth == 1}
    assert shown_dirs == {f"d{i:02d}" for i in range(8)}  # 16 actions at the root: 8 cd's + 4 files x (cat, id)
    assert {task.targets[0] for task in tasks if task.depth == 0} == {f"f{i:02d}.py" for i in range(4)}
    with pytest.raises(ValueError, match="not reachable"):
        AutoExploreEnv(generate_tasks(wide, seed=0, max_tasks=500, max_actions=64), max_actions=16)
    kept = AutoExploreEnv(generate_tasks(wide, seed=0, max_tasks=500), max_actions=16, skip_unreachable=True)
    assert {task.task_id for task in kept.tasks} <= {task.task_id for task in tasks}


def test_kinds_and_depth_limits(repo):
    only_columns = generate_tasks(repo, kinds=("column",))
    assert {task.kind for task in only_columns} == {"column"}
    shallow = generate_tasks(repo, max_depth=1)
    assert max(task.depth for task in shallow) <= 1
    deep = generate_tasks(repo, min_depth=4, max_depth=None)
    assert [task.subject for task in deep] == ["deep_function"]
    with pytest.raises(ValueError, match="kind"):
        generate_tasks(repo, kinds=("poem",))
    with pytest.raises(FileNotFoundError):
        generate_tasks(repo / "missing")


def test_document_headings():
    markdown = "# Title #\n```\n# code\n```\nSub\n===\n\ntext\n---\n"
    assert document_headings(markdown, markdown=True) == ["Title", "Sub", "text"]
    rst = "Title\n=====\n\nShort\n==\n  Indented\n  --------\n"
    assert document_headings(rst, markdown=False) == ["Title"]


def test_splits_are_by_repository(tmp_path):
    roots = [make_repo(tmp_path, name=f"repo{i}") for i in range(5)]
    assignment = split_roots(roots, fractions=(0.6, 0.2, 0.2), seed=0)
    assert sorted(len(v) for v in assignment.values()) == [1, 1, 3]
    assert assignment == split_roots(roots, seed=0)
    splits = build_splits(roots, seed=0, max_tasks=5)
    used = {split: {task.root for task in tasks} for split, tasks in splits.items()}
    assert used["train"].isdisjoint(used["val"]) and used["train"].isdisjoint(used["test"])
    assert used["val"].isdisjoint(used["test"])
    ids = [task.task_id for tasks in splits.values() for task in tasks]
    assert len(ids) == len(set(ids))
    with pytest.raises(ValueError, match="overlap"):
        build_splits({"train": [roots[0]], "test": [roots[0] / "src"]})
    with pytest.raises(ValueError, match="cannot fill"):
        split_roots(roots[:2])
    explicit = build_splits({"train": roots[:2], "val": roots[2:3], "test": roots[3:]}, max_tasks=3)
    assert {task.root for task in explicit["val"]} == {str(roots[2].resolve())}


def test_package_root_and_default_corpus():
    assert (package_root("gymnasium") / "core.py").is_file()
    with pytest.raises(ModuleNotFoundError, match="not installed"):
        package_root("surely_not_an_installed_package_xyz")
    with pytest.raises(ValueError, match="single-file module"):
        package_root("typing_extensions")
    names = [name for names in DEFAULT_SPLIT_PACKAGES.values() for name in names]
    assert len(names) == len(set(names))
    for name in names:
        assert package_root(name).is_dir()


def test_command_line(repo, tmp_path, capsys):
    out = tmp_path / "tasks.jsonl"
    assert main(["--roots", str(repo), "--seed", "0", "--max-tasks", "6", "--out", str(out)]) == 0
    assert len(load_tasks(out)) == 6
    assert "6 tasks" in capsys.readouterr().err
    assert main([]) == 2
    assert main(["--packages", "surely_not_an_installed_package_xyz"]) == 2
    assert "not installed" in capsys.readouterr().err
    splits_dir = tmp_path / "splits"
    other = [make_repo(tmp_path, name=f"r{i}") for i in range(2)]
    assert main(["--roots", str(repo), *map(str, other), "--splits-dir", str(splits_dir), "--max-tasks", "3"]) == 0
    assert sorted(p.name for p in splits_dir.iterdir()) == ["test.jsonl", "train.jsonl", "val.jsonl"]
    result = subprocess.run(
        [sys.executable, "-m", "environments.auto_explore.generator", "--packages", "jsonargparse", "--max-tasks", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["root"] == str(package_root("jsonargparse"))
