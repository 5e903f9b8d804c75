"""The comparison's timeline: validations of a method placed across all the stages that trained it."""

import sys
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from compare import existing_runs, validation_timeline  # noqa: E402


def _stage(directory: Path, losses: list[int], validations: list[tuple[int, float]], env_steps=(), seconds=60.0):
    writer = SummaryWriter(str(directory / "version_0"))
    start = float(next((directory / "version_0").glob("events.out.tfevents.*")).name.split(".")[3])
    for step in losses:
        writer.add_scalar("train/loss", 1.0, step, walltime=start + seconds * (step + 1) / (losses[-1] + 1))
    for step, value in env_steps:
        writer.add_scalar("rollout/env_steps", value, step, walltime=start + 1)
    for step, rate in validations:
        writer.add_scalar("val/success_rate", rate, step, walltime=start + seconds * (step + 1) / (losses[-1] + 1))
    writer.close()


def test_validations_are_placed_after_the_stages_before_them(tmp_path):
    _stage(tmp_path / "reflection_sft", losses=[99, 199], validations=[], seconds=120.0)
    _stage(tmp_path / "policy_sft", losses=[49, 99], validations=[(49, 0.25), (99, 0.5)], seconds=60.0)
    _stage(tmp_path / "reflect_rl", losses=[4, 9], validations=[(9, 0.875)], env_steps=[(4, 100.0), (9, 210.0)])

    timeline = validation_timeline(tmp_path, ("reflection_sft", "policy_sft", "reflect_rl"))

    assert [v.updates for v in timeline] == [250, 300, 310]
    assert [v.success for v in timeline] == [0.25, 0.5, 0.875]
    assert [v.env_steps for v in timeline] == [0.0, 0.0, 210.0]
    minutes = [v.minutes for v in timeline]
    assert abs(minutes[0] - 2.5) < 0.05 and abs(minutes[1] - 3.0) < 0.05 and abs(minutes[2] - 4.0) < 0.05


def test_a_stage_that_never_ran_gives_no_timeline(tmp_path):
    _stage(tmp_path / "policy_sft", losses=[99], validations=[(99, 0.5)])
    assert validation_timeline(tmp_path, ("policy_sft", "reflect_rl")) == []


def test_report_only_finds_the_finished_runs_of_the_methods_asked_for(tmp_path):
    for seed, variant in [(0, "base"), (2, "base"), (0, "no_negatives"), (1, "base")]:
        (tmp_path / "dangerous_taxi" / f"seed{seed}" / variant).mkdir(parents=True)
    for seed, variant in [(0, "base"), (2, "base"), (0, "no_negatives")]:  # seed 1 never finished
        (tmp_path / "dangerous_taxi" / f"seed{seed}" / variant / "results.json").write_text("{}")

    runs = existing_runs(tmp_path, ["dangerous_taxi", "alfworld"], ["sft", "reflect_rl"])

    assert sorted(runs) == [("dangerous_taxi", 0, "base"), ("dangerous_taxi", 2, "base")]
    assert runs[("dangerous_taxi", 2, "base")] == tmp_path / "dangerous_taxi" / "seed2" / "base"
