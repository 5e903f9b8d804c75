"""The SFT stages of every profile share one data section (``data: sft_data.yaml``), read alike by every reader."""

from pathlib import Path

import pytest
import yaml

from datamodules.rollout_datamodule import RolloutDataModule
from datamodules.stage_config import load_stage_config

ROOT = Path(__file__).resolve().parents[2]
#: Every shipped profile: its folder and the prefix of its stage configs.
PROFILES = [
    (folder, prefix)
    for folder in (ROOT / "configs").glob("**/")
    for prefix in ("", "gpu_")
    if (folder / f"{prefix}reflection_sft.yaml").is_file()
] + [(ROOT / "examples" / "text_maze" / "configs", "")]
IDS = [f"{folder.relative_to(ROOT)}/{prefix or 'cpu'}" for folder, prefix in PROFILES]


def test_every_profile_is_found():
    assert len(PROFILES) == 8  # dangerous_taxi, its grid variant, auto_explore, alfworld (+ 3 gpu), text_maze


@pytest.mark.parametrize(("folder", "prefix"), PROFILES, ids=IDS)
def test_both_sft_stages_of_a_profile_read_the_same_data_file(folder, prefix):
    reflection = load_stage_config(folder / f"{prefix}reflection_sft.yaml")
    policy = load_stage_config(folder / f"{prefix}policy_sft.yaml")

    assert reflection["data"] == policy["data"]  # identical, not merely alike
    for stage in ("reflection_sft", "policy_sft"):  # a reference, so that the two cannot drift apart
        assert yaml.safe_load((folder / f"{prefix}{stage}.yaml").read_text())["data"] == f"{prefix}sft_data.yaml"
    data = reflection["data"]
    assert data["max_reflection_prompt_tokens"] <= data["max_prompt_tokens"]


@pytest.mark.parametrize(("folder", "prefix"), PROFILES, ids=IDS)
def test_the_rl_stage_cuts_reflection_prompts_as_the_reflection_model_was_trained(folder, prefix):
    sft = load_stage_config(folder / f"{prefix}reflection_sft.yaml")["data"]
    rl = load_stage_config(folder / f"{prefix}reflect_rl.yaml")["data"]

    assert rl["max_reflection_prompt_tokens"] == sft["max_reflection_prompt_tokens"]
    assert rl["max_prompt_tokens"] == sft["max_prompt_tokens"]  # the policy's budget, as in policy SFT


def test_the_cli_reads_the_shared_data_file(capsys):
    from lightning_modules.lightning_cli import run_lightning_cli

    config = ROOT / "configs" / "dangerous_taxi" / "reflection_sft.yaml"
    with pytest.raises(SystemExit) as exit_info:
        run_lightning_cli(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)["data"]

    shared = yaml.safe_load((config.parent / "sft_data.yaml").read_text())
    assert shared["teacher_episodes"] == 100
    assert {key: printed[key] for key in shared} == shared


def test_a_data_reference_is_read_from_the_configs_folder(tmp_path, monkeypatch):
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "shared.yaml").write_text("num_envs: 2\nenv_kwargs: {observation_format: compact}\n")
    (tmp_path / "profile" / "stage.yaml").write_text("trainer: {max_steps: 3}\ndata: shared.yaml\n")
    (tmp_path / "inline.yaml").write_text("data: {num_envs: 3}\n")
    monkeypatch.chdir(ROOT)  # not the config's folder

    config = load_stage_config(tmp_path / "profile" / "stage.yaml")

    data = {"num_envs": 2, "env_kwargs": {"observation_format": "compact"}}
    assert config == {"trainer": {"max_steps": 3}, "data": data}
    assert load_stage_config(tmp_path / "inline.yaml")["data"] == {"num_envs": 3}
    assert RolloutDataModule.from_config([tmp_path / "profile" / "stage.yaml"]).hparams.num_envs == 2


def test_a_missing_data_file_is_named(tmp_path):
    (tmp_path / "stage.yaml").write_text("data: nowhere.yaml\n")
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        load_stage_config(tmp_path / "stage.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    (tmp_path / "stage.yaml").write_text("data: list.yaml\n")
    with pytest.raises(ValueError, match="not a mapping"):
        load_stage_config(tmp_path / "stage.yaml")
