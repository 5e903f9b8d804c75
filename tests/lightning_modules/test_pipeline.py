import json

import pytest

from lightning_modules.cli import main

TINY = (
    "reflection_sft=--trainer.max_steps=2 --trainer.val_check_interval=2 --trainer.num_sanity_val_steps=0 "
    "--model.init_args.backbone.tiny.n_layer=1 --model.init_args.backbone.tiny.n_embd=32 "
    "--model.init_args.backbone.tiny.tokenizer_samples=10 --model.init_args.generate_samples=2 "
    "--data.num_envs=2 --data.batch_size=4 --data.val_episodes=1 --data.max_reflection_tokens=8"
)
POLICY = (
    "policy_sft=--trainer.max_steps=2 --trainer.val_check_interval=2 --trainer.num_sanity_val_steps=0 "
    "--model.init_args.val_rollouts=1 --data.num_envs=2 --data.batch_size=4 --data.val_episodes=1 "
    "--data.max_reflection_tokens=8"
)
RL = (
    "reflect_rl=--trainer.max_steps=2 --trainer.val_check_interval=2 --trainer.num_sanity_val_steps=0 "
    "--model.init_args.val_rollouts=1 --data.num_envs=2 --data.episodes_per_step=2 --data.max_reflection_tokens=8"
)


def test_pipeline_runs_three_stages_and_tests_both_policies(tmp_path, capsys):
    code = main(
        ["pipeline", "--env", "dangerous_taxi", "--output-dir", str(tmp_path), "--test-episodes", "2",
         "--stage-args", TINY, "--stage-args", POLICY, "--stage-args", RL,
         "--stage-args", "test=--data.num_envs=2 --data.max_reflection_tokens=8"]
    )  # fmt: skip
    assert code == 0
    for stage in ("reflection_sft", "policy_sft", "reflect_rl"):
        assert (tmp_path / stage / "export" / "config.json").is_file()
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert set(results) == {"SFT policy", "Reflect-RL"}
    assert all(0.0 <= r["test/success_rate"] <= 1.0 for r in results.values())
    out = capsys.readouterr().out
    assert "SFT policy" in out and "Reflect-RL" in out and "greedy success" in out
    for name in ("test_sft", "test_reflect-rl"):  # each policy's test logs and transcripts, in the output directory
        assert list((tmp_path / name).rglob("transcripts/test_step*.jsonl")), name


def test_pipeline_rejects_an_unknown_environment_and_stage(capsys):
    with pytest.raises(SystemExit):
        main(["pipeline", "--env", "nowhere"])
    assert "configs/nowhere lacks" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["pipeline", "--stage-args", "stage9=--x"])
