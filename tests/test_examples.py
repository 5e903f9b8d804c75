"""The custom-environment example trains through the whole pipeline, named only by its class path in the configs."""

import json
from pathlib import Path

from lightning_modules.cli import main

ROOT = Path(__file__).resolve().parents[1]
FAST = {
    "reflection_sft": "--trainer.max_steps=4 --trainer.val_check_interval=4 --data.val_episodes=2 "
    "--model.init_args.generate_samples=2 --model.init_args.backbone.tiny.n_embd=32 --data.num_envs=4 "
    "--data.teacher_episodes=8 --model.init_args.backbone.tiny.tokenizer_samples=10",
    "policy_sft": "--trainer.max_steps=2 --trainer.val_check_interval=2 --model.init_args.val_rollouts=2 "
    "--data.val_episodes=2 --data.num_envs=4 --data.teacher_episodes=8 --data.max_reflection_tokens=8",
    "reflect_rl": "--trainer.max_steps=2 --trainer.val_check_interval=2 --model.init_args.val_rollouts=2 "
    "--data.episodes_per_step=4 --data.num_envs=4 --data.max_reflection_tokens=8",
    "test": "--data.num_envs=4 --data.max_reflection_tokens=8",
}


def test_text_maze_example_runs_the_pipeline_from_its_own_configs(tmp_path, capsys):
    stage_args = [arg for stage, extra in FAST.items() for arg in ("--stage-args", f"{stage}={extra}")]
    code = main(["pipeline", "--env", "text_maze", "--configs", str(ROOT / "examples" / "text_maze" / "configs"),
                 "--output-dir", str(tmp_path), "--test-episodes", "4", *stage_args])  # fmt: skip
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert set(results) == {"SFT policy", "Reflect-RL"}
    transcript = next((tmp_path / "test_reflect_rl").rglob("transcripts/test_step*.jsonl"))
    turn = json.loads(transcript.read_text().splitlines()[0])["turns"][0]
    assert turn["observation"].startswith("Room ") and turn["action"].startswith("go ")
    assert "SFT policy" in capsys.readouterr().out
