"""Import of the paper's AutoExplore task format (root, filename, question, optimal_path) into our tasks."""

import json

import gymnasium as gym
import pytest
from auto_explore_fixtures import make_repo

import environments  # noqa: F401
from environments.auto_explore import TaskFileError, load_tasks
from environments.auto_explore.paper_tasks import convert_optimal_path, import_paper_tasks


@pytest.fixture
def repos(tmp_path):
    make_repo(tmp_path / "repos", "proj")
    return tmp_path / "repos"


def paper_record(**changes):
    record = {
        "question": "Which class starts the engine?",
        "answer": "Engine.start in core.py",
        "optimal_path": ["ls", "cd src", "ls", "cd pkg", "ls", "cat core.py"],
        "filename": "src/pkg/core.py",
        "root": "proj",
        "n_level": 2,
        "model": "gpt-4",
    }
    record.update(changes)
    return record


def write_json(path, records):
    path.write_text(json.dumps(records, indent=2))
    return path


def test_the_paper_s_records_become_our_tasks(repos, tmp_path):
    records = [
        paper_record(),
        paper_record(question="What does the readme cover?", filename="README.md", optimal_path=["ls", "cat README.md"],
                     n_level=0),
        paper_record(question="", filename="setup.py", optimal_path=["ls", "cat setup.py"], n_level=0),
        paper_record(question="Where are the prices?", filename=["data/prices.csv", "data/more.csv"]),
    ]  # fmt: skip
    tasks, counts = import_paper_tasks(write_json(tmp_path / "data.json", records), repos_root=repos)
    assert counts == {"records": 4, "imported": 3, "no_question": 1, "unplayable": 0}
    first, readme, prices = tasks
    assert first.task_id == "proj#0" and first.root == str(repos / "proj") and first.kind == "custom"
    assert first.targets == ["src/pkg/core.py"] and first.optimal_path == ["cd src", "cd pkg", "id core.py"]
    assert first.depth == 2 and first.question == "Which class starts the engine?"
    assert readme.optimal_path == ["id README.md"] and readme.task_id == "proj#1"
    assert prices.targets == ["data/prices.csv", "data/more.csv"] and prices.depth == 1


def test_jsonl_is_read_too_and_roots_default_to_the_file_s_directory(repos):
    path = repos / "tasks.jsonl"
    path.write_text(json.dumps(paper_record()) + "\n\n" + json.dumps(paper_record(question="Again?")) + "\n")
    tasks, counts = import_paper_tasks(path)
    assert counts["imported"] == 2 and tasks[1].task_id == "proj#1"


def test_optimal_paths_convert_to_our_actions():
    assert convert_optimal_path(["ls", 'cd "my docs"', "ls", "cat 'notes v2.md'"]) == ["cd my docs", "id notes v2.md"]
    assert convert_optimal_path(["cd a", "id b.py"]) == ["cd a", "id b.py"]
    with pytest.raises(ValueError, match="not 'ls', 'cd <dir>' or a final 'cat'"):
        convert_optimal_path(["cat a.py", "cd b"])
    with pytest.raises(ValueError, match="python"):
        convert_optimal_path(["python run.py"])


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({k: v for k, v in paper_record().items() if k != "filename"}, "missing field 'filename'"),
        (paper_record(optimal_path=["ls", "cd src", "ls", "cat core.py"]), "does not lead to 'src/pkg/core.py'"),
        (paper_record(n_level=1), "n_level 1 does not match"),
        (paper_record(filename=7), "'filename' must be a path"),
        (paper_record(filename="../outside.py"), "bad task"),
    ],
)
def test_a_malformed_record_names_the_file_and_the_record(repos, tmp_path, record, message):
    path = write_json(tmp_path / "data.json", [paper_record(), record])
    with pytest.raises(TaskFileError) as error:
        import_paper_tasks(path, repos_root=repos)
    second = path.read_text().splitlines().index("  {", 2) + 1  # the line where the second record starts
    assert str(error.value).startswith(f"{path}:{second}: record 2: bad task") and message in str(error.value)


def test_missing_repositories_fail_or_are_skipped(repos, tmp_path):
    path = write_json(tmp_path / "data.json", [paper_record(), paper_record(root="not_downloaded")])
    with pytest.raises(FileNotFoundError, match="not_downloaded"):
        import_paper_tasks(path, repos_root=repos)
    tasks, counts = import_paper_tasks(path, repos_root=repos, skip_unplayable=True)
    assert len(tasks) == 1 and counts["unplayable"] == 1


def test_import_tasks_command_writes_tasks_the_environment_plays(repos, tmp_path, capsys):
    from lightning_modules.cli import main

    source = write_json(tmp_path / "data.json", [paper_record(), paper_record(root="gone")])
    out = tmp_path / "tasks.jsonl"
    assert main(["import-tasks", str(source), "--repos-root", str(repos), "--out", str(out)]) == 1
    assert "reflect-rl import-tasks: error:" in capsys.readouterr().err
    args = ["import-tasks", str(source), "--repos-root", str(repos), "--out", str(out), "--skip-unplayable"]
    assert main(args) == 0
    assert "1 of 2 tasks" in capsys.readouterr().err
    assert [t.task_id for t in load_tasks(out)] == ["proj#0"]

    env = gym.make("ReflectRL/AutoExplore-v0", tasks=str(out))
    observation, info = env.reset(seed=0)
    assert "Which class starts the engine?" in observation
    done = False
    while not done:
        observation, reward, terminated, truncated, info = env.step(info["oracle_action"])
        done = terminated or truncated
    assert info["success"]
