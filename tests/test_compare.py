"""The comparison benchmark (benchmarks/compare.py and benchmarks/comparison/): validation timelines across stages,
the page written from kept run summaries."""

import argparse
import json
import shutil
import sys
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from comparison.curves import validation_timeline  # noqa: E402
from comparison.page import ANALYSIS_MARKER, merge_pages  # noqa: E402
from comparison.report import grouped_success, minutes_cell, report  # noqa: E402
from comparison.runs import existing_runs  # noqa: E402
from comparison.summaries import load_summaries, save_summary  # noqa: E402

from lightning_modules.pipeline import success_by_group  # noqa: E402


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


def test_a_page_keeps_the_sections_of_environments_it_did_not_rerun():
    previous = (
        "# Title\n\nold header\n\n## dangerous_taxi\n\nDT old table\n\n## auto_explore\n\nAE table\n\n"
        f"## GPU profiles\n\nold sizes\n\n{ANALYSIS_MARKER}\n\n## Reading\n\nhand-written\n"
    )
    page = (
        "# Title\n\nnew header\n\n## alfworld\n\nALF table\n\n## dangerous_taxi\n\nDT new table\n\n"
        "## GPU profiles\n\nsizes\n"
    )

    merged = merge_pages(previous, page)

    assert "new header" in merged and "old header" not in merged
    assert "DT new table" in merged and "DT old table" not in merged
    assert "AE table" in merged and "ALF table" in merged
    assert [line for line in merged.splitlines() if line.startswith("## ")] == [
        "## dangerous_taxi",
        "## auto_explore",
        "## alfworld",
        "## GPU profiles",
        "## Reading",
    ]
    assert "old sizes" not in merged and merged.rstrip().endswith("hand-written")


def test_success_by_group_is_averaged_over_the_seeds_that_tested_the_method():
    def row(rate_1, rate_2, n=10):
        return {"test/success_rate": 0.5, "test/success_rate_depth_1": rate_1, "test/episodes_depth_1": n,
                "test/success_rate_depth_2": rate_2, "test/episodes_depth_2": n,
                "test/success_rate_depth_1_sampled": 0.0, "test/episodes_depth_1_sampled": n}  # fmt: skip

    results = {(0, "base"): {"SFT policy": row(0.2, 0.0), "Reflect-RL": row(0.4, 0.1)},
               (1, "base"): {"SFT policy": row(0.4, 0.2)}}  # fmt: skip

    lines = grouped_success("depth", [0, 1], results, ["sft", "reflect_rl", "no_curriculum"])

    assert lines[2] == "| method | 1 | 2 |"
    assert lines[4] == "| SFT only | 30% ± 14% (n=10) | 10% ± 14% (n=10) |"
    assert lines[5] == "| Reflect-RL | 40% (n=10) | 10% (n=10) |"
    assert len(lines) == 7  # no row for a method without runs
    assert grouped_success(None, [0], results, ["sft"]) == []


def test_groups_come_in_numeric_order_then_by_name():
    metrics = {f"test/{kind}_depth_{depth}": 1.0 for depth in ("10", "2", "x") for kind in ("success_rate", "episodes")}

    assert list(success_by_group(metrics, "depth")) == ["2", "10", "x"]
    assert success_by_group(metrics, "task_type") == {}


def test_a_no_curriculum_run_that_trained_its_own_sft_is_marked_in_the_minutes():
    shared = {"minutes": 5.04, "trained_stages": ["reflect_rl"]}
    own = {"minutes": 80.0, "trained_stages": ["reflection_sft", "policy_sft", "reflect_rl"]}

    assert minutes_cell(shared, "no_curriculum") == "5.0"
    assert minutes_cell(own, "no_curriculum") == "80.0\\*"
    assert minutes_cell(own, "base") == "80.0"
    assert minutes_cell(None, "base") == "-"


def test_the_page_is_written_from_kept_summaries_without_the_runs(tmp_path):
    run = tmp_path / "runs" / "dangerous_taxi" / "seed0" / "base"
    _stage(run / "reflection_sft", losses=[99], validations=[])
    _stage(run / "policy_sft", losses=[99], validations=[(99, 0.5)])
    for stage in ("reflect_rl", "rl_no_reflection"):
        writer = SummaryWriter(str(run / stage / "version_0"))
        for step in range(4):
            writer.add_scalar("train/loss", 1.0, step)
            writer.add_scalar("rollout/env_steps", 100.0 * (step + 1), step)
            writer.add_scalar("rollout/success_rate", 0.25 * step, step)
        writer.add_scalar("val/success_rate", 0.75, 3)
        writer.add_scalar("system/peak_rss_mb", 1234.0, 3)
        writer.close()
    _stage(run / "policy_sft_no_reflection", losses=[99], validations=[(99, 0.9)])
    rows = {"SFT policy": 0.5, "Reflect-RL": 0.75, "RL, no reflection": 1.0}
    results = {name: {"test/success_rate": rate, "test/success_rate_sampled": rate / 2} for name, rate in rows.items()}
    (run / "results.json").write_text(json.dumps({"results": results, "seconds": {}}))

    shared = run.parent / "no_curriculum"  # shares the SFT exports of the base run, trains its own RL stage
    shared.mkdir()
    for stage in ("reflection_sft", "policy_sft"):
        (shared / stage).symlink_to(run / stage, target_is_directory=True)
    shutil.copytree(run / "reflect_rl", shared / "reflect_rl")
    shutil.copy(run / "results.json", shared / "results.json")

    data_dir = tmp_path / "kept"
    save_summary(data_dir, "dangerous_taxi", 0, "base", run)
    save_summary(data_dir, "dangerous_taxi", 0, "no_curriculum", shared)
    shutil.rmtree(tmp_path / "runs")  # the page needs only the summaries
    methods = ["sft", "rl_no_reflection", "reflect_rl"]
    summaries = load_summaries(data_dir, ["dangerous_taxi", "alfworld"], methods)
    args = argparse.Namespace(envs=["dangerous_taxi"], methods=methods, data_dir=data_dir, output=tmp_path / "r.md")
    page = report(args, summaries, 0.0)

    assert list(summaries) == [("dangerous_taxi", 0, "base")]
    assert summaries[("dangerous_taxi", 0, "base")]["trained_stages"] == [
        "reflection_sft", "policy_sft", "reflect_rl", "policy_sft_no_reflection", "rl_no_reflection"
    ]  # fmt: skip
    no_curriculum = json.loads((data_dir / "dangerous_taxi" / "seed0_no_curriculum.json").read_text())
    assert no_curriculum["trained_stages"] == ["reflect_rl"]
    assert list(no_curriculum["peak_rss_mb"]) == ["reflect_rl"]
    assert "| Reflect-RL | 75% ± 0% (75%) | 38% ± 0% (38%) | 58% (drop-off) |" in page
    assert "| SFT only | 50% ± 0% (50%) |" in page
    assert "| base: reflect_rl | 1,234 |" in page
    assert "100 teacher episodes for SFT" in page  # the budget of the profile's configs
    timeline = summaries[("dangerous_taxi", 0, "base")]["timelines"]["reflect_rl"]
    assert [(v.updates, v.success) for v in timeline] == [(200, 0.5), (204, 0.75)]
    assert (tmp_path / "results_dangerous_taxi_curves.png").is_file()
