"""Run an environment's whole pipeline with the no-reflection baseline and write the results page in docs/.

Usage:
    python benchmarks/pipeline.py [--env dangerous_taxi] [--output docs/pipeline_dangerous_taxi.md] [-- extra args]

Runs ``reflect-rl pipeline --env <env> --baseline`` (stage 1, 2 and 3; then SFT and RL without reflection on the same
teacher episodes and RL budget) under ``runs/benchmarks/pipeline_<env>``, then writes a markdown page with the
held-out table, the wall-clock of each stage, and the RL curves (PNG, copied next to the page). Arguments after
``--`` go to the pipeline command.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datamodules.stage_config import load_stage_config  # noqa: E402
from lightning_modules.pipeline import group_order, success_by_group  # noqa: E402


def grouped_table(results: dict[str, dict[str, float]], key: str | None) -> str:
    """Greedy held-out success by group (``eval_group_by``, e.g. AutoExplore's depth), if the test logged groups."""
    groups = {name: success_by_group(metrics, key) for name, metrics in results.items()} if key else {}
    values = sorted({value for by_value in groups.values() for value in by_value}, key=group_order)
    if not values:
        return ""
    lines = ["| policy | " + " | ".join(values) + " |", "|---|" + "---:|" * len(values)]
    for name, by_value in groups.items():
        cells = [f"{by_value[v][0]:.0%} (n={by_value[v][1]})" if v in by_value else "-" for v in values]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return f"Greedy held-out success by {key}:\n\n" + "\n".join(lines) + "\n\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="dangerous_taxi")
    parser.add_argument("--output", type=Path, default=None, help="default: docs/pipeline_<env>.md")
    parser.add_argument("--run-dir", type=Path, default=None, help="default: runs/benchmarks/pipeline_<env>")
    parser.add_argument("--no-baseline", action="store_true", help="skip RL without reflection")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    output = args.output or ROOT / "docs" / f"pipeline_{args.env}.md"
    run_dir = args.run_dir or ROOT / "runs" / "benchmarks" / f"pipeline_{args.env}"
    command = [sys.executable, "-m", "lightning_modules.cli", "pipeline", "--env", args.env, "--output-dir",
               str(run_dir), *([] if args.no_baseline else ["--baseline"]), *extra]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    total = time.perf_counter() - start

    table = (run_dir / "results.txt").read_text().strip()
    rl_config = load_stage_config(ROOT / "configs" / args.env / "reflect_rl.yaml")
    group_key = rl_config["data"].get("eval_group_by")
    saved = json.loads((run_dir / "results.json").read_text())
    seconds = saved["seconds"]
    main_job = sum(v for k, v in seconds.items() if k in ("reflection_sft", "policy_sft", "reflect_rl"))
    curves = output.with_name(output.stem + "_rl_curves.png")
    if (run_dir / "rl_curves.png").is_file():
        shutil.copyfile(run_dir / "rl_curves.png", curves)
    shown = " ".join(["reflect-rl pipeline --env", args.env, *([] if args.no_baseline else ["--baseline"]), *extra])
    output.write_text(
        f"# The {args.env} pipeline, tiny CPU profile\n\n"
        f"Command: `python benchmarks/pipeline.py {' '.join(sys.argv[1:])}` (it runs `{shown}`), "
        f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
        f"{total / 60:.1f} min in all, of which the three Reflect-RL stages took {main_job / 60:.1f} min "
        "(the rest is the baseline and the held-out tests).\n\n"
        f"```\n{table}\n```\n\n"
        f"{grouped_table(saved['results'], group_key)}"
        f"![RL curves]({curves.name})\n"
    )
    print(output.read_text())


if __name__ == "__main__":
    main()
