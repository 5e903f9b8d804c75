"""Run both SFT stages of an environment's tiny CPU profile and report time, agreement and accuracy.

Usage:
    python benchmarks/sft_stages.py [--env dangerous_taxi] [--output docs/sft_dangerous_taxi.md]

Runs ``reflect-rl fit`` on ``configs/<env>/reflection_sft.yaml`` then ``policy_sft.yaml`` (the policy validated with
the frozen reflection model's own reflections), under ``runs/benchmarks/sft_<env>``, reads the TensorBoard scalars
and writes a markdown table and a PNG of the validation curves next to it.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[1]


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """All scalars of the newest TensorBoard run under ``log_dir``."""
    runs = sorted(log_dir.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    accumulator = EventAccumulator(str(runs[-1]))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def run_stage(config: Path, out: Path, stage: str, extra: list[str]) -> float:
    command = [
        sys.executable, "-m", "lightning_modules.cli", "fit", "--config", str(config),
        f"--trainer.logger.init_args.save_dir={out}", "--trainer.enable_progress_bar=false",
        f"--model.init_args.export_dir={out / stage / 'export'}", *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def plot(curves: dict[str, list[tuple[int, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, points in curves.items():
        ax.plot([s for s, _ in points], [v for _, v in points], marker="o", label=label)
    ax.set_xlabel("training step")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="dangerous_taxi")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    output = args.output or ROOT / "docs" / f"sft_{args.env}.md"
    out = ROOT / "runs" / "benchmarks" / f"sft_{args.env}"
    configs = ROOT / "configs" / args.env

    reflection_time = run_stage(configs / "reflection_sft.yaml", out, "reflection_sft", [])
    export = out / "reflection_sft" / "export"
    policy_time = run_stage(
        configs / "policy_sft.yaml", out, "policy_sft",
        [f"--model.init_args.backbone.name_or_path={export}", f"--model.init_args.reflection={export}"],
    )  # fmt: skip
    reflection = scalars(out / "reflection_sft")
    policy = scalars(out / "policy_sft")
    png = output.with_suffix(".png")
    plot(
        {
            "stage 1: reflection recommends the teacher's action": reflection["val/recommendation_agreement"],
            "stage 2: policy accuracy vs oracle (model reflections)": policy["val/accuracy"],
            "stage 2: held-out success rate": policy["val/success_rate"],
        },
        png,
    )
    last = {k: v[-1][1] for k, v in {**reflection, **policy}.items()}
    steps1, steps2 = reflection["train/loss"][-1][0] + 1, policy["train/loss"][-1][0] + 1
    agreement = reflection["val/recommendation_agreement"][-1][1]
    rows = [
        ("stage 1 (reflection SFT) wall-clock", f"{reflection_time / 60:.1f} min ({steps1} steps)"),
        ("stage 2 (policy SFT) wall-clock", f"{policy_time / 60:.1f} min ({steps2} steps)"),
        ("reflection recommends the teacher's action (held-out turns)", f"{agreement:.1%}"),
        ("reflection perplexity on teacher reflections (held-out)", f"{reflection['val/perplexity'][-1][1]:.3f}"),
        ("policy accuracy vs oracle, given the reflection model's reflections", f"{last['val/accuracy']:.1%}"),
        ("policy success rate, held-out episodes (greedy)", f"{last['val/success_rate']:.1%}"),
    ]  # fmt: skip
    machine = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    text = "\n".join(
        [
            f"# SFT stages on {args.env}, tiny CPU profile",
            "",
            f"Command: `python benchmarks/sft_stages.py --env {args.env}` (machine: {machine}). It runs",
            f"`reflect-rl fit --config configs/{args.env}/reflection_sft.yaml` and then `policy_sft.yaml` with the",
            "stage-1 export as both the policy's starting point and its frozen reflection model. Held-out turns come",
            "from teacher episodes on validation seeds (1,000,000 on), with 20% deliberate teacher mistakes, so",
            "corrective reflections are measured too; the policy's accuracy is measured on the reflection model's",
            "own (greedy) reflections, not the teacher's.",
            "",
            "| measurement | value |",
            "|---|---:|",
            *[f"| {name} | {value} |" for name, value in rows],
            "",
            f"![validation curves]({png.name})",
            "",
        ]
    )
    output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
