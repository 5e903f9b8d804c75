import json

import pytest
from auto_explore_fixtures import make_repo

from environments.auto_explore import AutoExploreEnv, Task, TaskFileError, load_tasks, save_tasks, tasks_for_stage


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path)


def good(repo, **changes):
    data = {
        "task_id": "t1",
        "root": str(repo),
        "question": "Which file defines `Engine`?",
        "targets": ["src/pkg/core.py"],
    }
    data.update(changes)
    return data


def test_task_derives_path_and_depth(repo):
    task = Task.from_dict(good(repo))
    assert task.optimal_path == ["cd src", "cd pkg", "id core.py"] and task.depth == 2 and task.kind == "custom"
    two = Task.from_dict(good(repo, targets=["src/pkg/core.py", "setup.py"]))
    assert two.optimal_path == ["id setup.py"] and two.depth == 0
    with pytest.raises(ValueError, match="does not match"):
        Task.from_dict(good(repo, optimal_path=["id core.py"]))
    with pytest.raises(ValueError, match="depth"):
        Task.from_dict(good(repo, depth=1))
    with pytest.raises(ValueError, match="no targets"):
        Task.from_dict(good(repo, targets=[]))


def test_round_trip(repo, tmp_path):
    tasks = [Task.from_dict(good(repo)), Task.from_dict(good(repo, task_id="t2", targets=["data/prices.csv"]))]
    path = save_tasks(tasks, tmp_path / "out" / "tasks.jsonl")
    assert load_tasks(path) == tasks
    env = AutoExploreEnv(path)
    assert [task.task_id for task in env.tasks] == ["t1", "t2"]


def test_relative_root_is_relative_to_the_task_file(repo, tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(good(repo, root="proj")) + "\n")
    assert load_tasks(path)[0].root == str(repo)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "JSON object"),
        (json.dumps({"task_id": "x", "root": "/", "question": "q"}), "Missing field.*targets"),
        (json.dumps({"task_id": "x", "root": "/", "question": "q", "targets": "a.py"}), "targets.*list"),
        (json.dumps({"task_id": 3, "root": "/", "question": "q", "targets": ["a.py"]}), "task_id.*str"),
        (json.dumps({"task_id": "x", "root": "/", "question": "q", "targets": [1]}), "list of strings"),
        (json.dumps({"task_id": "x", "root": "/", "question": "q", "targets": ["a"], "depth": True}), "depth"),
        (json.dumps({"task_id": "x", "root": "/", "question": "q", "targets": ["a"], "target": "a"}), "Unknown field"),
        (json.dumps({"task_id": "x", "root": "/", "question": "q", "targets": ["../a"]}), "component"),
        (json.dumps({"task_id": "x", "root": "/", "question": "q", "targets": ["/etc/passwd"]}), "absolute"),
    ],
)
def test_malformed_task_file_names_file_and_line(repo, tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good(repo)) + "\n\n" + line + "\n")
    with pytest.raises(TaskFileError, match=message) as error:
        load_tasks(path)
    assert f"{path}:3:" in str(error.value)
    with pytest.raises(TaskFileError, match=f"{path}:3:"):
        AutoExploreEnv(str(path))


def test_duplicate_ids_and_missing_files(repo, tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text(json.dumps(good(repo)) + "\n" + json.dumps(good(repo)) + "\n")
    with pytest.raises(TaskFileError, match=r"dup.jsonl:2: duplicate task_id 't1' \(first on line 1\)"):
        load_tasks(path)
    with pytest.raises(FileNotFoundError):
        load_tasks(tmp_path / "nope.jsonl")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        AutoExploreEnv([good(repo, root=str(tmp_path / "gone"))])
    with pytest.raises(FileNotFoundError, match="src/pkg/missing.py"):
        AutoExploreEnv([good(repo, targets=["src/pkg/missing.py"])])
    with pytest.raises(FileNotFoundError, match="not a visible regular file"):
        AutoExploreEnv([good(repo, targets=[".hidden/secret.py"])])
    with pytest.raises(ValueError, match="Duplicate task_id"):
        AutoExploreEnv([good(repo), good(repo)])
    with pytest.raises(ValueError, match="No tasks"):
        AutoExploreEnv([])
    with pytest.raises(TypeError):
        AutoExploreEnv(42)


def test_stages(repo):
    tasks = [
        Task.from_dict(good(repo, task_id=f"t{t}", targets=[t]))
        for t in ["setup.py", "data/prices.csv", "src/pkg/core.py", "src/pkg/utils/strings.py"]
    ]
    assert [len(tasks_for_stage(tasks, s)) for s in ("0", "1", "2", "3", "all")] == [1, 1, 1, 1, 4]
    with pytest.raises(ValueError, match="Unknown AutoExplore stage"):
        tasks_for_stage(tasks, "4")
