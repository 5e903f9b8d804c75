"""SFT datasets on disk: export of the teacher rollout, reading it back, training the SFT stages from it."""

import json
from pathlib import Path

import pytest

from datamodules.dataset import DatasetFileError, export_dataset, first_episodes, read_dataset
from datamodules.prompt import ACTION_LABELS
from datamodules.rollout_datamodule import RolloutDataModule
from lightning_modules.backbone import train_tokenizer

ROOT = Path(__file__).resolve().parents[2]
TAXI = {"observation_format": "compact"}


def datamodule(**kwargs):
    return RolloutDataModule(env_kwargs=TAXI, num_envs=3, batch_size=4, mistake_prob=0.3, seed=11, **kwargs)


def key(turn):
    return (turn.seed, turn.step, turn.observation, tuple(turn.actions), turn.reflection, turn.oracle, turn.negative,
            turn.taken)  # fmt: skip


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "taxi.jsonl"
    summary = export_dataset(datamodule(), 6, path)
    return path, summary


def test_export_writes_one_record_per_turn_with_what_sft_needs(exported):
    path, summary = exported
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert summary["episodes"] == 6 and summary["turns"] == len(records) and summary["teacher"] == "rules"
    assert summary["negatives"] == sum(r["negative"] for r in records) > 0
    for record in records:
        assert record["env_id"] == "ReflectRL/DangerousTaxi-v0" and record["teacher"] == "rules"
        assert record["actions"][ACTION_LABELS.index(record["label"])] == record["oracle_action"]
        assert record["reflection"] and isinstance(record["seed"], int)
        assert (record["taken_action"] != record["oracle_action"]) == record["negative"]
    assert len({r["seed"] for r in records}) == 6


def test_the_file_holds_exactly_the_turns_the_teacher_plays_on_the_fly(exported):
    path, _ = exported
    on_the_fly = datamodule(teacher_episodes=6).fixed_turns()
    from_file = datamodule(dataset=str(path)).fixed_turns()
    assert [key(t) for t in from_file] == [key(t) for t in on_the_fly]
    assert read_dataset(path, "ReflectRL/DangerousTaxi-v0", 6)[0].order == list(range(6))


def test_teacher_episodes_takes_the_first_episodes_of_the_file(exported):
    path, _ = exported
    turns = read_dataset(path)
    two = datamodule(dataset=str(path), teacher_episodes=2).fixed_turns()
    assert [key(t) for t in two] == [key(t) for t in first_episodes(turns, 2)]
    assert len({t.seed for t in two}) == 2 and len(two) < len(turns)
    with pytest.raises(ValueError, match="has only 6 episodes"):
        datamodule(dataset=str(path), teacher_episodes=7).fixed_turns()


def test_batches_come_from_the_file(exported):
    path, _ = exported
    dm = datamodule(dataset=str(path))
    tokenizer = train_tokenizer(dm.sample_texts(3), vocab_size=400, num_labels=8)
    file_turns = {key(t) for t in read_dataset(path)}
    for examples in ("reflection", "policy"):
        dm.bind(tokenizer, examples=examples)
        batches = iter(dm.train_dataloader())
        for _ in range(3):
            batch = next(batches)
            assert all(key(t) in file_turns for t in batch["turns"])
    assert batch["targets"].tolist() == [t.oracle for t in batch["turns"]]


GOOD = {
    "env_id": "ReflectRL/DangerousTaxi-v0", "seed": 1, "step": 0, "observation": "Taxi at row 1.",
    "actions": ["go south", "go north", "go east", "go west", "pick up the passenger", "drop off the passenger"],
    "reflection": "Go south.", "label": "A", "oracle_action": "go south", "negative": False,
}  # fmt: skip


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({k: v for k, v in GOOD.items() if k != "label"}, ":2: missing field 'label'"),
        ({k: v for k, v in GOOD.items() if k not in ("seed", "env_id")}, ":2: missing field 'env_id', 'seed'"),
        ("{not json", ":2: not valid JSON"),
        ({**GOOD, "seed": "1"}, ":2: field 'seed' must be int, got str"),
        ({**GOOD, "label": "G"}, ":2: 'G' is not an action label here"),
        ({**GOOD, "oracle_action": "go west"}, ":2: label 'A' is 'go south', but oracle_action is 'go west'"),
        ({**GOOD, "env_id": "ReflectRL/AutoExplore-v0"}, ":2: the record is from 'ReflectRL/AutoExplore-v0'"),
        ({**GOOD, "actions": []}, ":2: field 'actions' must be a non-empty list"),
        ([1, 2], ":2: a record must be a JSON object"),
    ],
)
def test_a_malformed_file_names_the_line_and_the_field(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    text = line if isinstance(line, str) else json.dumps(line)
    path.write_text(json.dumps(GOOD) + "\n" + text + "\n")
    with pytest.raises(DatasetFileError) as error:
        datamodule(dataset=str(path))
    assert str(error.value).startswith(f"{path}{message}")


def test_an_empty_or_missing_file_is_a_clear_error(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DatasetFileError, match="no records"):
        read_dataset(tmp_path / "empty.jsonl")
    with pytest.raises(FileNotFoundError, match="export-dataset"):
        datamodule(dataset=str(tmp_path / "missing.jsonl"))


def test_export_dataset_command_then_both_sft_stages_train_from_the_file(tmp_path, capsys):
    from lightning_modules.cli import main

    output = tmp_path / "taxi.jsonl"
    config = ROOT / "configs" / "dangerous_taxi" / "reflection_sft.yaml"
    code = main(["export-dataset", "--config", str(config), "--episodes", "4", "--output", str(output),
                 "--data.num_envs=2", "--data.mistake_prob", "0.5"])  # fmt: skip
    assert code == 0 and "4 episodes" in capsys.readouterr().err
    assert len({json.loads(line)["seed"] for line in output.read_text().splitlines()}) == 4

    tiny = ["--model.init_args.backbone.tiny.n_layer=1", "--model.init_args.backbone.tiny.n_embd=32",
            "--model.init_args.backbone.tiny.n_head=2", "--model.init_args.backbone.tiny.vocab_size=400",
            "--model.init_args.backbone.tiny.tokenizer_samples=4"]  # fmt: skip
    common = ["--trainer.max_steps=2", "--trainer.val_check_interval=2", "--trainer.num_sanity_val_steps=0",
              "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
              f"--trainer.logger.init_args.save_dir={tmp_path}", "--data.num_envs=2", "--data.batch_size=4",
              "--data.val_episodes=1", "--data.max_reflection_tokens=12", f"--data.dataset={output}",
              "--data.teacher_episodes=null"]  # fmt: skip
    stage1 = tmp_path / "reflection_export"
    assert main(["fit", "--config", str(config), *common, *tiny, "--model.init_args.generate_samples=4",
                 f"--model.init_args.export_dir={stage1}"]) == 0  # fmt: skip
    policy = ROOT / "configs" / "dangerous_taxi" / "policy_sft.yaml"
    assert main(["fit", "--config", str(policy), *common, f"--model.init_args.backbone.name_or_path={stage1}",
                 f"--model.init_args.reflection={stage1}", "--model.init_args.val_rollouts=1",
                 f"--model.init_args.export_dir={tmp_path / 'policy_export'}"]) == 0  # fmt: skip
    assert (tmp_path / "policy_export" / "config.json").is_file()
    hparams = (tmp_path / "policy_sft" / "version_0" / "hparams.yaml").read_text()
    assert f"dataset: {output}" in hparams


def test_a_bad_dataset_stops_the_command_with_one_line(tmp_path, capsys):
    from lightning_modules.cli import main

    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({k: v for k, v in GOOD.items() if k != "observation"}) + "\n")
    config = ROOT / "configs" / "dangerous_taxi" / "reflection_sft.yaml"
    code = main(["fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={tmp_path}",
                 f"--data.dataset={path}"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and f"{path}:1: missing field 'observation'" in err and "Traceback" not in err
