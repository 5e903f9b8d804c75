"""The parts of the comparison benchmark (benchmarks/comparison/): stage configs, runs, scalars, statistics, rows."""

import json
import subprocess
import sys
from pathlib import Path

import yaml
from torch.utils.tensorboard import SummaryWriter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from comparison import runs  # noqa: E402
from comparison.curves import Validation, first_reach, training_curve  # noqa: E402
from comparison.report import (  # noqa: E402
    EnvironmentRuns,
    curve_reach_cells,
    memory_lines,
    minutes_lines,
    results_lines,
    validation_reach_cells,
)
from comparison.stats import mean_and_sd, spread  # noqa: E402
from comparison.summaries import load_summaries  # noqa: E402


def _profile(root: Path) -> None:
    """A minimal profile ``configs/toy`` with negative examples in the SFT stages and a curriculum in RL.

    As in the shipped profiles, the SFT stages share their data section: ``data: sft_data.yaml``.
    """
    negatives = {"class_path": "callbacks.NegativeExampleCallback", "init_args": {"probability": 0.2}}
    curriculum = {"class_path": "callbacks.CurriculumCallback",
                  "init_args": {"stages": [{"name": "pickup", "steps": 5}, {"name": "full"}]}}  # fmt: skip
    folder = root / "configs" / "toy"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sft_data.yaml").write_text(yaml.safe_dump({"seed": 0, "mistake_prob": 0.2, "teacher_episodes": 7}))
    for stage in ("reflection_sft", "policy_sft", "reflect_rl"):
        rl = stage == "reflect_rl"
        config = {
            "seed_everything": 0,
            "trainer": {"max_steps": 3, "callbacks": [curriculum if rl else negatives]},
            "data": {"seed": 0, "mistake_prob": 0.0, "eval_stage": "dropoff"} if rl else "sft_data.yaml",
        }
        (folder / f"{stage}.yaml").write_text(yaml.safe_dump(config))


def test_a_stage_config_is_seeded_and_logs_memory_first(tmp_path, monkeypatch):
    _profile(tmp_path)
    monkeypatch.setattr(runs, "ROOT", tmp_path)

    config = runs.stage_config("toy", "policy_sft", "base", 3)

    assert config["seed_everything"] == 3
    assert config["data"]["seed"] == 3 * runs.TRAINING_SEED_STRIDE
    assert config["trainer"]["callbacks"][0] == {"class_path": "callbacks.PeakMemoryCallback"}
    assert config["trainer"]["callbacks"][1]["init_args"] == {"probability": 0.2}
    assert config["data"]["mistake_prob"] == 0.2


def test_without_negatives_the_datamodule_alone_sets_the_mistake_probability(tmp_path, monkeypatch):
    _profile(tmp_path)
    monkeypatch.setattr(runs, "ROOT", tmp_path)

    for stage in ("reflection_sft", "policy_sft"):
        config = runs.stage_config("toy", stage, "no_negatives", 0)
        assert config["data"]["mistake_prob"] == 0.0
        assert config["data"]["teacher_episodes"] == 7  # the rest of the shared data section is kept
        assert [c["class_path"] for c in config["trainer"]["callbacks"]] == ["callbacks.PeakMemoryCallback"]
    rl = runs.stage_config("toy", "reflect_rl", "no_negatives", 0)
    assert rl["trainer"]["callbacks"][1]["init_args"]["stages"][0]["name"] == "pickup"  # RL is untouched


def test_without_curriculum_rl_trains_on_the_test_stage_only(tmp_path, monkeypatch):
    _profile(tmp_path)
    monkeypatch.setattr(runs, "ROOT", tmp_path)

    rl = runs.stage_config("toy", "reflect_rl", "no_curriculum", 0)
    sft = runs.stage_config("toy", "policy_sft", "no_curriculum", 0)

    assert rl["trainer"]["callbacks"][1]["init_args"] == {"stages": [{"name": "dropoff"}]}  # eval_stage wins
    assert sft["data"]["mistake_prob"] == 0.2
    written = runs.variant_configs("toy", "no_curriculum", 0, tmp_path / "out")
    assert yaml.safe_load((written / "reflect_rl.yaml").read_text()) == rl


def test_a_written_variant_config_holds_its_data_inline(tmp_path, monkeypatch):
    _profile(tmp_path)
    monkeypatch.setattr(runs, "ROOT", tmp_path)

    written = runs.variant_configs("toy", "no_negatives", 2, tmp_path / "out")

    assert not (written / "sft_data.yaml").exists()  # each written SFT config stands alone
    for stage in ("reflection_sft", "policy_sft"):
        data = yaml.safe_load((written / f"{stage}.yaml").read_text())["data"]
        assert data == {"seed": 2 * runs.TRAINING_SEED_STRIDE, "mistake_prob": 0.0, "teacher_episodes": 7}


def test_a_run_is_finished_once_it_has_the_results_it_was_asked_for(tmp_path):
    assert not runs.finished(tmp_path, baseline=False)
    (tmp_path / "results.json").write_text(json.dumps({"results": {"Reflect-RL": {}}}))
    assert runs.finished(tmp_path, baseline=False)
    assert not runs.finished(tmp_path, baseline=True)  # the no-reflection baseline is missing
    (tmp_path / "results.json").write_text(json.dumps({"results": {"Reflect-RL": {}, "RL, no reflection": {}}}))
    assert runs.finished(tmp_path, baseline=True)


def test_no_curriculum_links_the_base_runs_sft_stages(tmp_path):
    base, output = tmp_path / "base", tmp_path / "no_curriculum"
    (base / "reflection_sft").mkdir(parents=True)

    runs.share_sft_exports(base, output)

    assert (output / "reflection_sft").is_symlink()
    assert (output / "reflection_sft").resolve() == (base / "reflection_sft").resolve()
    assert not (output / "policy_sft").exists()  # the base run has not trained it yet


def test_each_command_is_recorded_once(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["compare.py", "--seeds", "0"])
    runs.record_command(tmp_path)
    runs.record_command(tmp_path)
    monkeypatch.setattr(sys, "argv", ["compare.py", "--seeds", "1"])
    runs.record_command(tmp_path)

    assert (tmp_path / "commands.txt").read_text().splitlines() == [
        "python benchmarks/compare.py --seeds 0",
        "python benchmarks/compare.py --seeds 1",
    ]


def test_the_training_curve_is_smoothed_and_placed_on_environment_steps(tmp_path):
    writer = SummaryWriter(str(tmp_path))
    for step, rate in enumerate([0.0, 1.0, 1.0, 0.0]):
        writer.add_scalar("rollout/success_rate", rate, step, walltime=1000.0 + 30 * step)
        if step != 2:  # a step without env_steps is left out
            writer.add_scalar("rollout/env_steps", 10.0 * (step + 1), step, walltime=1000.0 + 30 * step)
    writer.close()

    curve = training_curve(tmp_path, window=2)

    assert curve == [(10.0, 0.0, 0.0), (20.0, 0.5, 30.0), (40.0, 0.5, 90.0)]
    assert first_reach(curve, 0.5) == (20.0, 30.0)
    assert first_reach(curve, 0.8) is None
    (tmp_path / "sft").mkdir()
    assert training_curve(tmp_path / "sft") == []  # a stage without rollouts


def test_spread_and_mean_and_sd():
    assert spread([0.5, 0.75]) == "62% ± 18% (50%, 75%)"
    assert spread([0.4]) == "40% ± 0% (40%)"
    assert spread([]) == "-"
    assert mean_and_sd([0.2, None, 0.4]) == "30% ± 14%"
    assert mean_and_sd([0.25]) == "25%"
    assert mean_and_sd([None]) == "-"


def test_reach_cells_average_over_the_seeds_that_reached_the_level():
    curves = [[(100.0, 0.6, 60.0), (200.0, 0.9, 120.0)], [(300.0, 0.7, 180.0)], []]

    assert curve_reach_cells(curves, 0.5) == ["200 (2/3)", "2.0"]
    assert curve_reach_cells(curves, 0.8) == ["200 (1/3)", "2.0"]
    assert curve_reach_cells(curves, 0.95) == ["not reached (0/3)", "-"]
    assert curve_reach_cells([[(16.0, 1.0, 0.0)]], 0.5) == ["at the first RL step (1/1)", "0"]

    timelines = [[Validation(1.0, 100, 0.0, 0.2), Validation(3.0, 300, 1500.0, 0.6)], [Validation(2.0, 250, 0, 0.5)]]
    assert validation_reach_cells(timelines, 0.5) == ["275 (2/2)", "2.5", "750"]
    assert validation_reach_cells(timelines, 0.9) == ["not reached (0/2)", "-", "-"]


def _summary(greedy: float, minutes: float = 1.0, trained=("reflection_sft", "policy_sft", "reflect_rl")) -> dict:
    results = {"SFT policy": {"test/success_rate": greedy / 2, "test/success_rate_sampled": 0.0},
               "Reflect-RL": {"test/success_rate": greedy, "test/success_rate_sampled": greedy / 2}}  # fmt: skip
    return {"results": results, "minutes": minutes, "trained_stages": list(trained), "peak_rss_mb": {"reflect_rl": 1e3}}


def test_results_rows_read_each_seed_of_the_methods_variant():
    env_runs = EnvironmentRuns.of(
        "dangerous_taxi",
        {("dangerous_taxi", 1, "base"): _summary(0.5), ("dangerous_taxi", 0, "base"): _summary(1.0),
         ("dangerous_taxi", 0, "no_curriculum"): _summary(0.25), ("alfworld", 0, "base"): _summary(0.0)},
    )  # fmt: skip

    lines = results_lines(env_runs, ["sft", "reflect_rl", "no_curriculum", "no_negatives"])

    assert env_runs.seeds == [0, 1]
    assert lines[2] == "| SFT only | 38% ± 18% (50%, 25%) | 0% ± 0% (0%, 0%) | - |"
    assert lines[3] == "| Reflect-RL | 75% ± 35% (100%, 50%) | 38% ± 18% (50%, 25%) | 58% (drop-off) |"
    assert lines[4] == "| Reflect-RL without curriculum | 25% ± 0% (25%) | 12% ± 0% (12%) | - |"
    assert lines[5] == "| Reflect-RL without negative examples | - | - | - |"


def test_minutes_and_memory_rows():
    own_sft = _summary(0.5, minutes=80.0)
    env_runs = EnvironmentRuns("env", {(0, "base"): _summary(0.5, 10.04), (1, "no_curriculum"): own_sft})

    minutes = minutes_lines(env_runs, ["base", "no_curriculum"])
    memory = memory_lines(env_runs, ["base", "no_curriculum"])

    assert minutes[2:4] == ["| seed | base | no_curriculum |", "|---|---:|---:|"]
    assert minutes[4:6] == ["| 0 | 10.0 | - |", "| 1 | - | 80.0\\* |"]
    assert minutes[-1].startswith("\\* trained its own SFT stages")
    assert memory[4:] == ["| base: reflect_rl | 1,000 |"]  # the first seed's runs only


def test_kept_summaries_come_back_as_curves_and_validations(tmp_path):
    (tmp_path / "env").mkdir()
    summary = {"curves": {"reflect_rl": [[16, 0.5, 3.0]]}, "timelines": {"reflect_rl": [[1.5, 10, 16.0, 0.25]]}}
    for name in ("seed0_base.json", "seed0_no_negatives.json", "seed2_no_curriculum.json"):
        (tmp_path / "env" / name).write_text(json.dumps(summary))

    loaded = load_summaries(tmp_path, ["env", "other"], ["reflect_rl", "no_curriculum"])

    assert sorted(loaded) == [("env", 0, "base"), ("env", 2, "no_curriculum")]
    assert loaded[("env", 0, "base")]["curves"]["reflect_rl"] == [(16, 0.5, 3.0)]
    assert loaded[("env", 0, "base")]["timelines"]["reflect_rl"] == [Validation(1.5, 10, 16.0, 0.25)]


def test_the_command_line_is_unchanged():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare.py"), "--help"], cwd=ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip

    for option in ("--envs", "--seeds", "--methods", "--run-dir", "--output", "--data-dir", "--report-only"):
        assert option in done.stdout
    assert "default: sft rl_no_reflection reflect_rl no_curriculum" in done.stdout
