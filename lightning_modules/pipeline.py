"""The one-command pipeline: reflection SFT, policy SFT, RLFT, then the policies on the same held-out test set.

``reflect-rl pipeline --env dangerous_taxi`` runs the tiny CPU profile of ``configs/<env>/``, passes each stage's
export to the next, and prints a table: the SFT policy against the Reflect-RL policy, both played greedy and sampled
with the same frozen reflection model on the same held-out test episodes. ``--baseline`` adds "RL without
reflection": a fresh policy of stage 1's size trained by SFT on the same teacher episodes without the analysis section
(with as many updates as stages 1 and 2 together), then RL-fine-tuned with the same RL budget; both are tested too.
Everything goes under ``--output-dir``.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import time
from pathlib import Path

from datamodules.smoothing import running_mean
from datamodules.stage_config import load_stage_config
from lightning_modules.evaluation import mean_sd, results_table
from lightning_modules.lightning_cli import run_lightning_cli

CONFIG_ROOT = Path(__file__).resolve().parents[1] / "configs"
STAGES = ("reflection_sft", "policy_sft", "reflect_rl")
BASELINE_STAGES = ("policy_sft_no_reflection", "rl_no_reflection")
#: Config file of each stage (the baseline's stages reuse the policy stages' configs).
CONFIG_OF = {**{s: s for s in STAGES}, "policy_sft_no_reflection": "policy_sft", "rl_no_reflection": "reflect_rl"}
#: Row names of the results table, and the stage whose export each row tests.
POLICIES = {
    "SFT policy": "policy_sft",
    "Reflect-RL": "reflect_rl",
    "SFT, no reflection": "policy_sft_no_reflection",
    "RL, no reflection": "rl_no_reflection",
}


def _common(output: Path, stage: str) -> list[str]:
    return [
        f"--trainer.logger.init_args.save_dir={output}",
        f"--trainer.logger.init_args.name={stage}",
        "--trainer.logger.init_args.version=0",
    ]


def _config(configs: Path, stage: str) -> dict:
    return load_stage_config(configs / f"{stage}.yaml")


def _baseline_sft_args(configs: Path) -> list[str]:
    """The no-reflection policy's SFT: a fresh model of stage 1's kind, as many updates as stages 1 and 2 together."""
    backbone = {
        "name_or_path": None,
        **(_config(configs, "reflection_sft")["model"]["init_args"].get("backbone") or {}),
    }
    steps = sum(int(_config(configs, s)["trainer"]["max_steps"]) for s in ("reflection_sft", "policy_sft"))
    return [f"--model.init_args.backbone={json.dumps(backbone)}", "--model.init_args.reflection=null",
            f"--trainer.max_steps={steps}"]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``reflect-rl pipeline``."""
    parser = argparse.ArgumentParser(prog="reflect-rl pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="dangerous_taxi", help="a folder of configs/ (default: dangerous_taxi)")
    parser.add_argument("--configs", type=Path, default=None, help="a folder of stage configs (default: configs/<env>)")
    parser.add_argument("--output-dir", type=Path, default=None, help="default: runs/pipeline/<env>")
    parser.add_argument("--test-episodes", type=int, default=100, help="held-out test episodes per policy")
    parser.add_argument("--baseline", action="store_true", help="also train and test RL without reflection")
    parser.add_argument("--skip-existing", action="store_true", help="reuse a stage whose export already exists")
    parser.add_argument("--rl-steps", type=int, default=None, help="override the RLFT configs' max_steps")
    parser.add_argument("--seed", type=int, default=None, help="seed of every stage (default: the configs' own)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None,
        help="run the pipeline once per seed (under <output-dir>/seed<N>) and print mean and spread over the seeds",
    )  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1, help="seeds run side by side with --seeds (default 1)")
    parser.add_argument(
        "--stage-args",
        action="append",
        default=[],
        metavar="STAGE=ARGS",
        help="extra CLI arguments for one stage (" + ", ".join((*STAGES, *BASELINE_STAGES, "test")) + "), e.g. "
        "--stage-args 'reflection_sft=--trainer.max_steps=500'; repeatable",
    )
    args = parser.parse_args(argv)
    known_stages = (*STAGES, *BASELINE_STAGES, "test")
    stage_args: dict[str, list[str]] = {}
    for item in args.stage_args:
        stage, _, rest = item.partition("=")
        if stage not in known_stages:
            parser.error(f"--stage-args: unknown stage {stage!r}; choose from {', '.join(known_stages)}.")
        stage_args.setdefault(stage, []).extend(shlex.split(rest))

    configs = args.configs or CONFIG_ROOT / args.env
    missing = [s for s in STAGES if not (configs / f"{s}.yaml").is_file()]
    if missing:
        known = sorted(p.name for p in CONFIG_ROOT.iterdir() if p.is_dir())
        parser.error(f"{configs} lacks {', '.join(m + '.yaml' for m in missing)}; environments in configs/: {known}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}.")
    output = args.output_dir or Path("runs") / "pipeline" / args.env
    if args.seeds:
        return run_seeds(args, output)
    seeded = [f"--seed_everything={args.seed}", f"--data.seed={args.seed}"] if args.seed is not None else []
    exports = {stage: output / stage / "export" for stage in (*STAGES, *BASELINE_STAGES)}
    timings: dict[str, float] = {}

    def fit(stage: str, *extra: str) -> None:
        if args.skip_existing and (exports[stage] / "config.json").is_file():
            print(f"[pipeline] {stage}: reusing {exports[stage]}")
            return
        print(f"[pipeline] {stage}: fitting {configs / CONFIG_OF[stage]}.yaml")
        start = time.perf_counter()
        run_lightning_cli(
            ["fit", "--config", str(configs / f"{CONFIG_OF[stage]}.yaml"), *_common(output, stage), *seeded,
             f"--model.init_args.export_dir={exports[stage]}", *extra, *stage_args.get(stage, [])]
        )  # fmt: skip
        timings[stage] = time.perf_counter() - start

    reflection = str(exports["reflection_sft"])
    rl_extra = [f"--trainer.max_steps={args.rl_steps}"] if args.rl_steps else []
    fit("reflection_sft")
    fit("policy_sft", f"--model.init_args.backbone.name_or_path={reflection}",
        f"--model.init_args.reflection={reflection}")  # fmt: skip
    fit("reflect_rl", f"--model.init_args.backbone.name_or_path={exports['policy_sft']}",
        f"--model.init_args.reflection={reflection}", *rl_extra)  # fmt: skip
    if args.baseline:
        fit("policy_sft_no_reflection", *_baseline_sft_args(configs))
        fit("rl_no_reflection", f"--model.init_args.backbone.name_or_path={exports['policy_sft_no_reflection']}",
            "--model.init_args.reflection=null", *rl_extra)  # fmt: skip

    results = {}
    for name, stage in POLICIES.items():
        if stage in BASELINE_STAGES and not args.baseline:
            continue
        reads = "null" if stage in BASELINE_STAGES else reflection
        print(f"[pipeline] testing {name} on {args.test_episodes} held-out episodes")
        cli = run_lightning_cli(
            ["test", "--config", str(configs / "reflect_rl.yaml"), *_common(output, f"test_{stage}"), *seeded,
             f"--model.init_args.backbone.name_or_path={exports[stage]}", f"--model.init_args.reflection={reads}",
             f"--model.init_args.val_rollouts={args.test_episodes}", "--trainer.enable_progress_bar=false",
             *stage_args.get("test", [])]
        )  # fmt: skip
        results[name] = {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("test/")}

    columns = ("sampled", "return", "length", "follows")
    table = results_table(results, args.test_episodes, args.env, columns=columns)
    table += "\ntime per stage: " + ", ".join(f"{s} {t / 60:.1f} min" for s, t in timings.items())
    print("\n" + table)
    (output / "results.json").write_text(json.dumps({"results": results, "seconds": timings}, indent=2))
    (output / "results.txt").write_text(table + "\n")
    plot_rl_curves(output, [s for s in ("reflect_rl", "rl_no_reflection") if (output / s / "version_0").is_dir()])
    return 0


def run_seeds(args: argparse.Namespace, output: Path) -> int:
    """Run the pipeline once per seed of ``--seeds`` in child processes (``--jobs`` at a time), then summarise.

    Each seed writes its own ``<output>/seed<N>`` (stages, exports, ``results.json``); the CPU threads are shared out
    between the jobs. The summary gives each policy's greedy held-out success per seed with its mean and standard
    deviation, and the gain of each RL stage over the SFT policy it started from, per seed: the difference on the same
    test episodes, which is what a conclusion about RL rests on.
    """
    import os
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    forwarded = ["--env", args.env, "--test-episodes", str(args.test_episodes)]
    forwarded += ["--configs", str(args.configs)] if args.configs else []
    forwarded += ["--baseline"] if args.baseline else []
    forwarded += ["--skip-existing"] if args.skip_existing else []
    forwarded += ["--rl-steps", str(args.rl_steps)] if args.rl_steps else []
    for item in args.stage_args:
        forwarded += ["--stage-args", item]
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    output.mkdir(parents=True, exist_ok=True)

    def one(seed: int) -> dict:
        directory = output / f"seed{seed}"
        directory.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "lightning_modules.cli", "pipeline", *forwarded, "--seed", str(seed),
                   "--output-dir", str(directory)]  # fmt: skip
        print(f"[pipeline] seed {seed}: {' '.join(command[2:])} (log: {directory / 'log.txt'})", flush=True)
        with (directory / "log.txt").open("w") as log:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        if done.returncode:
            raise RuntimeError(f"The pipeline of seed {seed} failed; its log is {directory / 'log.txt'}.")
        print(f"[pipeline] seed {seed} done", flush=True)
        return json.loads((directory / "results.json").read_text())

    with ThreadPoolExecutor(args.jobs) as pool:
        per_seed = dict(zip(args.seeds, pool.map(one, args.seeds), strict=True))
    summary = seeds_summary(per_seed)
    print("\n" + summary)
    (output / "results.txt").write_text(summary + "\n")
    (output / "results.json").write_text(json.dumps({str(s): r for s, r in per_seed.items()}, indent=2))
    return 0


def seeds_summary(per_seed: dict[int, dict]) -> str:
    """Greedy held-out success of each policy per seed with mean ± sd, and each RL stage's gain over its start."""

    def spread(values: list[float], signed: bool) -> str:
        mean, sd = mean_sd(values)
        return f"{mean:{'+' if signed else ''}.0%} ± {sd:.0%}"

    seeds = sorted(per_seed)
    names = [n for n in POLICIES if all(n in per_seed[s]["results"] for s in seeds)]
    success = {n: [per_seed[s]["results"][n]["test/success_rate"] for s in seeds] for n in names}
    gains = {
        f"gain of {rl}": [a - b for a, b in zip(success[rl], success[sft], strict=True)]
        for rl, sft in (("Reflect-RL", "SFT policy"), ("RL, no reflection", "SFT, no reflection"))
        if rl in success and sft in success
    }
    width = max(20, *(len(n) for n in [*names, *gains]))

    def row(name: str, values: list[float], signed: bool = False) -> str:
        cells = " ".join(format(v, ">+8.0%" if signed else ">8.0%") for v in values)
        return f"{name:{width}} {cells} {spread(values, signed):>12}"

    header = f"{'policy':{width}} " + " ".join(f"{'seed ' + str(s):>8}" for s in seeds) + f" {'mean ± sd':>12}"
    lines = [f"Held-out greedy success over seeds {', '.join(map(str, seeds))} (mean ± sd):", header]
    lines += [row(name, success[name]) for name in names]
    lines += [row(name, values, signed=True) for name, values in gains.items()]
    return "\n".join(lines)


def success_by_group(metrics: dict[str, float], key: str, split: str = "test") -> dict[str, tuple[float, int]]:
    """Greedy held-out success per value of ``eval_group_by`` in a stage's logged metrics.

    Args:
        metrics: A policy's metrics as the evaluation logs them (a row of ``results.json``).
        key: The ``eval_group_by`` key, e.g. ``"depth"`` (AutoExplore) or ``"task_type"`` (ALFWorld).
        split: ``"test"`` or ``"val"``.

    Returns:
        ``value -> (success rate, episodes)``, sorted by `group_order`; empty if the evaluation logged no groups.

    Example:
        >>> success_by_group({"test/success_rate_depth_1": 0.5, "test/episodes_depth_1": 4.0}, "depth")
        {'1': (0.5, 4)}
    """
    pattern = re.compile(rf"^{re.escape(split)}/episodes_{re.escape(key)}_(?P<value>.+)$")
    groups = {}
    for name, count in metrics.items():
        if (match := pattern.match(name)) and not match["value"].endswith("_sampled"):  # sampled play counts apart
            value = match["value"]
            groups[value] = (metrics[f"{split}/success_rate_{key}_{value}"], int(count))
    return dict(sorted(groups.items(), key=lambda item: group_order(item[0])))


def group_order(value: str) -> tuple:
    """Sort key for group values that puts depth 2 before depth 10 and names after numbers."""
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def plot_rl_curves(output: Path, stages: list[str]) -> Path | None:
    """Plot the RL stages' rollout and held-out success against environment steps into ``<output>/rl_curves.png``."""
    if not stages:
        return None
    import matplotlib
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    plotted = 0
    for stage in stages:
        events = EventAccumulator(str(output / stage / "version_0"), size_guidance={"scalars": 0})
        events.Reload()
        tags = events.Tags()["scalars"]
        if "rollout/env_steps" not in tags:
            continue
        plotted += 1
        env_steps = {e.step: e.value for e in events.Scalars("rollout/env_steps")}
        rollouts = [(env_steps[e.step], e.value) for e in events.Scalars("rollout/success_rate") if e.step in env_steps]
        window = 10
        smooth = running_mean([y for _, y in rollouts], window)
        (line,) = ax.plot([x for x, _ in rollouts], smooth, label=f"{stage}: rollouts (mean of {window} steps)")
        if "val/success_rate" in tags:
            val = [(env_steps[min(env_steps, key=lambda s: abs(s - e.step))], e.value)
                   for e in events.Scalars("val/success_rate")]  # fmt: skip
            ax.plot([x for x, _ in val], [y for _, y in val], marker="o", linestyle="--", color=line.get_color(),
                    label=f"{stage}: held-out validation (greedy)")  # fmt: skip
    if not plotted:  # too short a run to have logged a step
        plt.close(fig)
        return None
    ax.set_xlabel("environment steps of RL")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path = output / "rl_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
