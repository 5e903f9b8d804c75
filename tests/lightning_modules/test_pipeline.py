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
TINY_MODEL = " --model.init_args.backbone.tiny.n_layer=1 --model.init_args.backbone.tiny.n_embd=32"
RL = (
    "reflect_rl=--trainer.max_steps=2 --trainer.val_check_interval=2 --trainer.num_sanity_val_steps=0 "
    "--trainer.log_every_n_steps=1 --model.init_args.val_rollouts=1 "
    "--data.num_envs=2 --data.episodes_per_step=2 --data.max_reflection_tokens=8 --model.init_args.group_size=2"
)


def test_pipeline_runs_three_stages_and_the_baseline_and_tests_every_policy(tmp_path, capsys):
    code = main(
        ["pipeline", "--env", "dangerous_taxi", "--output-dir", str(tmp_path), "--test-episodes", "2", "--baseline",
         "--stage-args", TINY, "--stage-args", POLICY, "--stage-args", RL,
         "--stage-args", POLICY.replace("policy_sft=", "policy_sft_no_reflection=") + TINY_MODEL,
         "--stage-args", RL.replace("reflect_rl=", "rl_no_reflection="),
         "--stage-args", "test=--data.num_envs=2 --data.max_reflection_tokens=8"]
    )  # fmt: skip
    assert code == 0
    for stage in ("reflection_sft", "policy_sft", "reflect_rl", "policy_sft_no_reflection", "rl_no_reflection"):
        assert (tmp_path / stage / "export" / "config.json").is_file()
        curves = tmp_path / stage / "version_0" / "curves.png"  # CurvePlotCallback's picture of the stage
        assert curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert set(results) == {"SFT policy", "Reflect-RL", "SFT, no reflection", "RL, no reflection"}
    assert all(0.0 <= r["test/success_rate"] <= 1.0 for r in results.values())
    out = capsys.readouterr().out
    assert "SFT policy" in out and "Reflect-RL" in out and "greedy success" in out
    for stage in ("policy_sft", "reflect_rl", "policy_sft_no_reflection", "rl_no_reflection"):  # each policy's test
        transcripts = list((tmp_path / f"test_{stage}").rglob("transcripts/test_step*.jsonl"))
        assert transcripts, stage
        first_turn = json.loads(transcripts[0].read_text().splitlines()[0])["turns"][0]
        assert (first_turn["reflection"] is None) == ("no_reflection" in stage)
    assert (tmp_path / "rl_curves.png").read_bytes()[:4] == b"\x89PNG"
    baseline = json.loads((tmp_path / "policy_sft_no_reflection" / "export" / "config.json").read_text())
    assert (baseline["n_layer"], baseline["n_embd"]) == (1, 32)  # its own fresh model, not the stage-1 export


def test_pipeline_rejects_an_unknown_environment_and_stage(capsys):
    with pytest.raises(SystemExit):
        main(["pipeline", "--env", "nowhere"])
    assert "configs/nowhere lacks" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["pipeline", "--stage-args", "stage9=--x"])


def test_pipeline_over_seeds_runs_each_seed_apart_and_reports_the_rl_gain_with_its_spread(tmp_path, capsys):
    code = main(
        ["pipeline", "--env", "dangerous_taxi", "--output-dir", str(tmp_path), "--test-episodes", "2",
         "--seeds", "3", "4", "--jobs", "2", "--stage-args", TINY, "--stage-args", POLICY, "--stage-args", RL,
         "--stage-args", "test=--data.num_envs=2 --data.max_reflection_tokens=8"]
    )  # fmt: skip
    assert code == 0
    per_seed = json.loads((tmp_path / "results.json").read_text())
    assert set(per_seed) == {"3", "4"}
    for seed in (3, 4):
        config = (tmp_path / f"seed{seed}" / "reflect_rl" / "version_0" / "config.yaml").read_text()
        assert f"seed_everything: {seed}" in config and f"seed: {seed}" in config
    out = capsys.readouterr().out
    assert "gain of Reflect-RL" in out and "mean ± sd" in out
    assert (tmp_path / "results.txt").read_text().strip() in out
