"""The ALFWorld profile runs all three stages and the held-out test on generated scenes (the real engine)."""

import json

import pytest

pytest.importorskip("alfworld")

from lightning_modules.cli import main  # noqa: E402

SMALL = "--data.num_envs=2 --data.max_reflection_tokens=8 --data.env_kwargs.num_scenes=2 --data.teacher_episodes=4"
FAST = {
    "reflection_sft": f"--trainer.max_steps=2 --trainer.val_check_interval=2 --data.val_episodes=2 {SMALL} "
    "--model.init_args.generate_samples=2 --model.init_args.backbone.tiny.n_embd=32 "
    "--model.init_args.backbone.tiny.tokenizer_samples=4",
    "policy_sft": f"--trainer.max_steps=2 --trainer.val_check_interval=2 --model.init_args.val_rollouts=2 "
    f"--data.val_episodes=2 {SMALL}",
    "reflect_rl": "--trainer.max_steps=1 --trainer.val_check_interval=1 --model.init_args.val_rollouts=2 "
    "--data.episodes_per_step=2 --data.num_envs=2 --data.max_reflection_tokens=8 --data.env_kwargs.num_scenes=2",
    "test": "--data.num_envs=2 --data.max_reflection_tokens=8 --data.env_kwargs.num_scenes=2",
}


def test_alfworld_pipeline_on_generated_scenes(tmp_path, capsys):
    stage_args = [arg for stage, extra in FAST.items() for arg in ("--stage-args", f"{stage}={extra}")]
    code = main(["pipeline", "--env", "alfworld", "--output-dir", str(tmp_path), "--test-episodes", "2", *stage_args])
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert set(results) == {"SFT policy", "Reflect-RL"}
    assert any(key.startswith("test/success_rate_task_type_") for key in results["Reflect-RL"])  # by task type
    transcript = next((tmp_path / "test_reflect_rl").rglob("transcripts/test_step*.jsonl"))
    first = json.loads(transcript.read_text().splitlines()[0])["turns"][0]
    assert first["observation"].startswith("Your task is to:") and first["reflection"] is not None
