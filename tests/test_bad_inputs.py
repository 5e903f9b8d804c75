"""Hostile inputs: each ends in one line that names the file, the line or the option, never in a hang or a traceback."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from datamodules.dataset import DatasetFileError, read_dataset
from datamodules.rollout_datamodule import RolloutDataModule
from environments.auto_explore import AutoExploreEnv, TaskFileError, load_tasks
from environments.auto_explore.paper_tasks import import_paper_tasks
from environments.dangerous_taxi import DangerousTaxiEnv
from environments.jsonl import output_file, regular_file
from lightning_modules.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = Path(sys.executable).parent / "reflect-rl"
TAXI_RL = ROOT / "configs" / "dangerous_taxi" / "reflect_rl.yaml"
TAXI_REFLECTION = ROOT / "configs" / "dangerous_taxi" / "reflection_sft.yaml"


# -- hostile inputs --------------------------------------------------------------------------------------------------
@pytest.fixture
def fifo(tmp_path):
    """A named pipe; a reader that opens it is soon released (it reads end of file) instead of blocking forever."""
    path = tmp_path / "pipe.jsonl"
    os.mkfifo(path)
    deadline = time.monotonic() + 60

    def release_readers():
        while time.monotonic() < deadline:
            time.sleep(0.2)
            try:  # succeeds only while a reader has it open (ENXIO otherwise)
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                continue

    threading.Thread(target=release_readers, daemon=True).start()
    return path


def deep_json(depth=100_000):
    return "[" * depth + "]" * depth


def big_integer_record():
    return '{"seed": ' + "9" * 5000 + "}"


def task_record(repo, **changes):
    return {"task_id": "t1", "root": str(repo), "question": "Which file?", "targets": ["a.py"], **changes}


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repos" / "proj"
    path.mkdir(parents=True)
    (path / "a.py").write_text("def f():\n    pass\n")
    return path


def one_line_error(capsys, run):
    """Run a console-script call; return its status and its only line of standard error (asserting it is one)."""
    try:
        code = run()
    except SystemExit as exit_:
        code = exit_.code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert code not in (0, None) and "Traceback" not in err[0] and "error" in err[0]
    return code, err[0]


# -- 1. files that are not regular files: refused before they are opened, in words -------------------------------------
def test_a_named_pipe_or_a_directory_is_refused_in_words_not_read(fifo, tmp_path):
    started = time.monotonic()
    for load in (AutoExploreEnv, load_tasks, read_dataset, import_paper_tasks):
        with pytest.raises(OSError, match=r"pipe\.jsonl is a named pipe \(FIFO\), not a regular file"):
            load(str(fifo))
        with pytest.raises(IsADirectoryError, match="is a directory, not a file"):
            load(str(tmp_path))
    assert time.monotonic() - started < 5  # refused, not read until the release thread unblocked a reader
    with pytest.raises(FileNotFoundError, match="does not exist"):
        regular_file(tmp_path / "missing.jsonl")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        regular_file(tmp_path / "a" / "b", "--config")
    with pytest.raises(OSError, match="named pipe"):  # the data section of stage configs, read from Python
        RolloutDataModule.from_config([fifo])


@pytest.mark.parametrize(
    "argv",
    [
        ["fit", "--config", "{fifo}"],
        ["validate", "--config={fifo}"],
        ["export-dataset", "--config", "{fifo}", "--episodes", "1", "--output", "{tmp}/out.jsonl"],
        ["import-tasks", "{fifo}", "--out", "{tmp}/out.jsonl"],
        ["evaluate-llm", "--model", "m", "--compare={fifo}"],
    ],
    ids=["fit", "validate", "export-dataset", "import-tasks", "evaluate-llm"],
)
def test_commands_refuse_a_named_pipe_without_blocking(argv, fifo, tmp_path, capsys):
    argv = [a.format(fifo=fifo, tmp=tmp_path) for a in argv]
    started = time.monotonic()
    _, line = one_line_error(capsys, lambda: main(argv))
    assert "named pipe (FIFO)" in line and str(fifo) in line
    assert time.monotonic() - started < 30


def test_an_inline_yaml_config_is_still_accepted(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(TAXI_REFLECTION), "--config", "trainer: {max_steps: 7}", "--print_config"])
    assert exit_info.value.code == 0 and "max_steps: 7" in capsys.readouterr().out


def test_a_checkpoint_that_is_a_directory_is_named(tmp_path, capsys):
    _, line = one_line_error(
        capsys, lambda: main(["test", "--config", str(TAXI_REFLECTION), f"--ckpt_path={tmp_path}"])
    )
    assert f"--ckpt_path {tmp_path} is a directory" in line


# -- 2. unreadable content: one line naming file and line -------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (deep_json(), "nested too deeply"),
        (b'{"task_id": "t\xff"}', "not UTF-8 text (byte 0xff"),
        (big_integer_record(), "Exceeds the limit (4300 digits)"),
        ("{not json", "not valid JSON"),
    ],
    ids=["deep", "utf8", "big-integer", "syntax"],
)
def test_unreadable_lines_name_the_file_and_the_line(repo, tmp_path, content, message):
    path = tmp_path / "bad.jsonl"  # two blank lines (skipped), then the bad line
    path.write_bytes(b"\n \n" + (content if isinstance(content, bytes) else content.encode()) + b"\n")
    for load, error in ((load_tasks, TaskFileError), (read_dataset, DatasetFileError), (AutoExploreEnv, TaskFileError)):
        with pytest.raises(error, match=f"{path}:3: ") as raised:
            load(str(path))
        assert message in str(raised.value)
    with pytest.raises(TaskFileError, match=f"{path}:3: ") as raised:
        import_paper_tasks(path, repos_root=repo.parent)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("element", "message"),
    [(deep_json(), "nested too deeply"), (big_integer_record(), "Exceeds the limit"), ('{"a" 1}', "not valid JSON")],
    ids=["deep", "big-integer", "syntax"],
)
def test_a_json_list_names_the_line_of_the_bad_record(repo, tmp_path, element, message):
    path = tmp_path / "data.json"
    path.write_text('[\n  {"root": "proj", "filename": "a.py", "question": "Which file?"},\n  ' + element + "\n]\n")
    with pytest.raises(TaskFileError, match=f"{path}:3: ") as raised:
        import_paper_tasks(path, repos_root=repo.parent)
    assert message in str(raised.value)
    path.write_bytes(b'[\n{"root": "proj"},\n"\xfe"]')
    with pytest.raises(TaskFileError, match=f"{path}:3: not UTF-8 text"):
        import_paper_tasks(path, repos_root=repo.parent)


def test_reset_options_that_are_not_a_dict_are_named():
    env = DangerousTaxiEnv()
    for options in ("notadict", ["stage", "pickup"], 3):
        with pytest.raises(ValueError, match="reset options must be a dict such as"):
            env.reset(seed=0, options=options)
    env.reset(seed=0, options={"stage": "pickup"})


def test_an_output_path_that_cannot_be_a_file_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(IsADirectoryError, match="--out .* is a directory"):
        output_file(tmp_path, "--out")
    with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
        output_file(tmp_path / "file" / "x.jsonl", "--out")
    assert output_file(tmp_path / "new" / "x.jsonl") == tmp_path / "new" / "x.jsonl"


def test_a_missing_reflection_export_names_the_reflection_option(tmp_path, capsys):
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "config.json").write_text("{}")
    argv = ["fit", "--config", str(TAXI_RL), f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
            f"--model.init_args.backbone.name_or_path={policy}",
            f"--model.init_args.reflection={tmp_path / 'gone'}"]  # fmt: skip
    _, line = one_line_error(capsys, lambda: main(argv))
    assert f"--model.init_args.reflection: {tmp_path / 'gone'} does not exist" in line
    assert "name_or_path" not in line
    assert not (tmp_path / "runs").exists()  # checked before the logger made a version directory
    argv[4] = f"--model.init_args.backbone.name_or_path={tmp_path / 'nothing'}"
    _, line = one_line_error(capsys, lambda: main(argv))
    assert f"--model.init_args.backbone.name_or_path: {tmp_path / 'nothing'} does not exist" in line


COMMANDS = ["fit", "validate", "test", "pipeline", "demo", "play", "make-tasks", "import-tasks", "export-dataset",
            "evaluate-llm", "check-env", "convert-gguf"]  # fmt: skip


def every_command_with_a_bad_input(tmp_path):
    (tmp_path / "deep.jsonl").write_text(deep_json() + "\n")
    (tmp_path / "dir").mkdir()
    return {
        "fit": ["fit", "--config", str(tmp_path / "dir")],
        "validate": ["validate", "--config", str(TAXI_REFLECTION), "--trainer.max_stepz=3"],
        "test": ["test", "--config", str(tmp_path / "missing.yaml")],
        "pipeline": ["pipeline", "--configs", str(tmp_path / "dir")],
        "demo": ["demo", "--episodes", "many"],
        "play": ["play", "--env-kwargs", "{not json"],
        "make-tasks": ["make-tasks", "--roots", str(tmp_path), "--out", str(tmp_path / "dir")],
        "import-tasks": ["import-tasks", str(tmp_path / "deep.jsonl"), "--out", str(tmp_path / "o.jsonl")],
        "export-dataset": ["export-dataset", "--config", str(tmp_path / "dir"), "--episodes", "1", "--output", "o"],
        "evaluate-llm": ["evaluate-llm", "--config", str(tmp_path / "missing.yaml")],
        "check-env": ["check-env", "ReflectRL/DangerousTaxi-v0", "--kwargs", "{not json"],
        "convert-gguf": ["convert-gguf", "--gguf", str(tmp_path / "missing.gguf"), "--output-dir", str(tmp_path / "o")],
    }


def test_the_bad_inputs_cover_every_command(tmp_path):
    from lightning_modules.cli import COMMANDS as KNOWN

    assert set(every_command_with_a_bad_input(tmp_path)) == set(KNOWN) == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_ends_a_bad_input_in_one_line(command, tmp_path, capsys):
    argv = every_command_with_a_bad_input(tmp_path)[command]
    _, line = one_line_error(capsys, lambda: main(argv))
    assert line.startswith(f"reflect-rl {command}: error: ")


def test_the_traceback_is_kept_on_request(tmp_path, monkeypatch):
    path = tmp_path / "deep.jsonl"
    path.write_text(deep_json() + "\n")
    monkeypatch.setenv("REFLECT_RL_TRACEBACK", "1")
    with pytest.raises(TaskFileError, match="nested too deeply"):
        main(["import-tasks", str(path), "--out", str(tmp_path / "o.jsonl")])


def test_make_tasks_refuses_an_output_that_is_a_directory_or_under_a_file(repo, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for out in (tmp_path, tmp_path / "file" / "x"):
        code, line = one_line_error(capsys, lambda: main(["make-tasks", "--roots", str(repo), "--out", str(out)]))  # noqa: B023
        assert code == 2 and f"--out {out}" in line
    code, line = one_line_error(capsys, lambda: main(["make-tasks", "--splits-dir", str(tmp_path / "file")]))
    assert "--splits-dir" in line and "is a file" in line


# -- 3. task roots stay inside --repos-root ---------------------------------------------------------------------------
@pytest.mark.parametrize("root", ["../../../../../../../../etc", "/etc", "proj/../..", "escape"])
def test_import_tasks_refuses_a_root_outside_the_repositories(root, repo, tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.py").write_text("x = 1\n")
    (repo.parent / "escape").symlink_to(outside, target_is_directory=True)
    source = tmp_path / "data.jsonl"
    records = [{"root": "proj", "filename": "a.py", "question": "Which file?"}]
    records.append({"root": root, "filename": "a.py", "question": "Which file?"})
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(TaskFileError, match=f"{source}:2: bad task: root '{root}' is outside the repositories"):
        import_paper_tasks(source, repos_root=repo.parent, max_actions=None)
    out = tmp_path / "tasks.jsonl"
    args = ["import-tasks", str(source), "--repos-root", str(repo.parent), "--out", str(out)]
    for extra in ([], ["--skip-unplayable"], ["--no-check"]):
        _, line = one_line_error(capsys, lambda: main(args + extra))  # noqa: B023
        assert f"{source}:2: bad task: root '{root}' is outside" in line
    assert not out.exists()


def test_a_root_inside_the_repositories_is_accepted_even_through_a_link(repo, tmp_path):
    (repo.parent / "alias").symlink_to(repo, target_is_directory=True)
    source = tmp_path / "data.jsonl"
    records = [{"root": r, "filename": "a.py", "question": "Which file?"} for r in ("proj", "alias", str(repo))]
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    tasks, counts = import_paper_tasks(source, repos_root=repo.parent, max_actions=None)
    assert counts["imported"] == 3 and tasks[2].root == str(repo)


# -- 4. a failed run leaves no empty version directory ----------------------------------------------------------------
def test_a_fit_that_fails_in_setup_removes_the_version_directory_it_created(tmp_path, capsys):
    broken = tmp_path / "broken_export"
    broken.mkdir()
    (broken / "config.json").write_text("{}")  # passes the early check, fails when loaded
    runs = tmp_path / "runs"
    kept = runs / "reflection_sft" / "version_0"
    kept.mkdir(parents=True)
    (kept / "config.yaml").write_text("an earlier run's\n")
    argv = ["fit", "--config", str(TAXI_REFLECTION), f"--trainer.logger.init_args.save_dir={runs}",
            f"--model.init_args.backbone.name_or_path={broken}", "--trainer.enable_progress_bar=false"]  # fmt: skip
    assert main(argv) == 1
    assert "reflect-rl fit: error:" in capsys.readouterr().err
    assert sorted(p.name for p in (runs / "reflection_sft").iterdir()) == ["version_0"]  # version_1 came and went
    assert (kept / "config.yaml").read_text() == "an earlier run's\n"
    other = tmp_path / "elsewhere"
    assert main(argv[:3] + [f"--trainer.logger.init_args.save_dir={other}"] + argv[4:]) == 1
    assert not other.exists()  # the run created it, and it held nothing


def test_only_directories_without_results_are_removed(tmp_path):
    from lightning_modules.lightning_cli import _remove_created

    version, parent = tmp_path / "name" / "version_0", tmp_path / "name"
    version.mkdir(parents=True)
    (version / "config.yaml").write_text("x")
    (version / "checkpoints").mkdir()
    (version / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    _remove_created([version, parent])
    assert (version / "checkpoints" / "last.ckpt").is_file()
    (version / "checkpoints" / "last.ckpt").unlink()
    (parent / "version_1").mkdir()  # another run's
    _remove_created([version, parent])
    assert not version.exists() and (parent / "version_1").is_dir()


# -- 5. class paths resolve from the working directory, as with python -m ---------------------------------------------
def run_console_script(cwd, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "REFLECT_RL_TRACEBACK")}
    return subprocess.run([str(CONSOLE_SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_the_console_script_imports_classes_from_the_working_directory(tmp_path):
    (tmp_path / "mymod.py").write_text(
        "from environments.dangerous_taxi import DangerousTaxiEnv\n\n\nclass MyEnv(DangerousTaxiEnv):\n    pass\n"
    )
    result = run_console_script(tmp_path, "check-env", "mymod:MyEnv", "--steps", "5")
    assert result.returncode == 0, result.stderr
    assert "mymod:MyEnv: follows the contract" in result.stdout
    missing = run_console_script(tmp_path, "check-env", "nomod:MyEnv")
    err = [line for line in missing.stderr.splitlines() if line.strip()]
    assert missing.returncode == 1 and len(err) == 1, missing.stderr
    assert "No module named 'nomod'" in err[0] and f"working directory {tmp_path}" in err[0]


def test_a_lightning_class_path_of_the_user_s_module_resolves_from_the_working_directory(tmp_path):
    (tmp_path / "mymodel.py").write_text(
        "from lightning_modules import ReflectionSFTModule\n\n\nclass MyModule(ReflectionSFTModule):\n    pass\n"
    )
    args = ["fit", "--config", str(TAXI_REFLECTION), "--model.class_path=mymodel.MyModule", "--print_config"]
    result = run_console_script(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert "class_path: mymodel.MyModule" in result.stdout
