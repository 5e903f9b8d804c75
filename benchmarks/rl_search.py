"""Search RL settings on validation seeds, with the same budget for Reflect-RL and RL without reflection.

Starts every run from the same SFT exports (a pipeline's output: ``reflection_sft``, ``policy_sft`` and
``policy_sft_no_reflection``), fine-tunes with RL under each variant's settings, and measures held-out success on the
validation episodes (what a choice may be made on) and on the test episodes (reported, never chosen on), before and
after RL, with how often the policy follows its reflection and overrules a wrong one.

    python benchmarks/rl_search.py --exports runs/pipeline/dangerous_taxi --output runs/rl_search \\
        --variant shipped= --variant eps0.1="--model.init_args.explore_epsilon=0.1" --seeds 0 1 2 --jobs 2

Each variant's value is extra ``reflect-rl fit`` arguments for both methods. Results go to ``<output>/results.json``
and a Markdown table to ``<output>/results.md``; finished runs are reused when the command is run again.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from comparison.stats import mean_and_sd

ROOT = Path(__file__).resolve().parents[1]
REFLECT_RL = str(Path(sys.executable).parent / "reflect-rl")
METHODS = {"reflect_rl": "policy_sft", "rl_no_reflection": "policy_sft_no_reflection"}
KEYS = ("success_rate", "success_rate_sampled", "follows_reflection", "overrules_wrong_reflection",
        "wrong_reflection_rate")  # fmt: skip
#: The table's cells after the variant and the method: (split, metric), each as mean ± sd over seeds.
COLUMNS = (("val", "success_rate"), ("test", "success_rate"), ("test", "success_rate_sampled"),
           ("test", "follows_reflection"), ("test", "overrules_wrong_reflection"))  # fmt: skip


def run(args: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with log.open("w") as handle:
        done = subprocess.run([REFLECT_RL, *args], cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, env=env)
    if done.returncode:
        raise RuntimeError(f"reflect-rl {' '.join(args[:3])} failed; see {log}")


def held_out(config: Path, policy: Path, reflection: str, split: str, episodes: int, out: Path, seed: int) -> dict:
    """Greedy and sampled held-out metrics of an export (``reflect-rl validate`` or ``test``)."""
    metrics_file = out / "metrics.json"
    if metrics_file.is_file():
        return json.loads(metrics_file.read_text())
    subcommand = "validate" if split == "val" else "test"
    script = (
        "import json, sys\nfrom lightning_modules.lightning_cli import run_lightning_cli\n"
        "cli = run_lightning_cli(sys.argv[1:])\n"
        "metrics = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}\n"
        f"json.dump(metrics, open({str(metrics_file)!r}, 'w'))\n"
    )
    args = [subcommand, "--config", str(config), f"--trainer.logger.init_args.save_dir={out}",
            "--trainer.logger.init_args.name=eval", "--trainer.enable_progress_bar=false",
            f"--model.init_args.backbone.name_or_path={policy}", f"--model.init_args.reflection={reflection}",
            f"--model.init_args.val_rollouts={episodes}", f"--seed_everything={seed}"]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with (out / "log.txt").open("w") as handle:
        done = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                              env=env)  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"{subcommand} of {policy} failed; see {out / 'log.txt'}")
    return json.loads(metrics_file.read_text())


def one_run(args, variant: str, extra: str, method: str, seed: int) -> dict:
    exports = args.exports
    reflection = str(exports / "reflection_sft" / "export") if method == "reflect_rl" else "null"
    start = exports / METHODS[method] / "export"
    out = args.output / variant / method / f"seed{seed}"
    export = out / "export"
    began = time.perf_counter()
    if not (export / "config.json").is_file():
        run(["fit", "--config", str(args.config), f"--trainer.logger.init_args.save_dir={out}",
             "--trainer.logger.init_args.name=fit", "--trainer.logger.init_args.version=0",
             f"--trainer.max_steps={args.steps}", f"--trainer.val_check_interval={args.steps}",
             "--trainer.num_sanity_val_steps=0", "--trainer.enable_progress_bar=false",
             f"--model.init_args.backbone.name_or_path={start}", f"--model.init_args.reflection={reflection}",
             f"--model.init_args.export_dir={export}", f"--seed_everything={seed}", f"--data.seed={seed}",
             *shlex.split(extra)], out / "fit.log")  # fmt: skip
    minutes = (time.perf_counter() - began) / 60
    results = {"variant": variant, "extra": extra, "method": method, "seed": seed, "minutes": minutes}
    for split, episodes in (("val", args.val_episodes), ("test", args.test_episodes)):
        metrics = held_out(args.config, export, reflection, split, episodes, out / split, seed)
        results[split] = {k: metrics.get(f"{split}/{k}") for k in KEYS}
    return results


def sft_start(args, method: str) -> dict:
    reflection = str(args.exports / "reflection_sft" / "export") if method == "reflect_rl" else "null"
    start = args.exports / METHODS[method] / "export"
    out = args.output / "sft_start" / method
    results = {"variant": "sft_start", "method": method}
    for split, episodes in (("val", args.val_episodes), ("test", args.test_episodes)):
        metrics = held_out(args.config, start, reflection, split, episodes, out / split, 0)
        results[split] = {k: metrics.get(f"{split}/{k}") for k in KEYS}
    return results


def report(rows: list[dict], args, searched: str | None = None) -> str:
    """A Markdown table of the runs, one row per variant and method (mean ± sd over seeds)."""
    searched = searched or f"RL settings searched on validation, {args.steps} RL steps per run"
    lines = [
        f"{searched} (`python {shlex.join(sys.argv)}`); {args.val_episodes} validation and {args.test_episodes} "
        "test episodes, mean ± sd over seeds.",
        "",
        "| variant | method | val success | test success | test sampled | follows refl. | overrules wrong | extra |",
        "|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["variant"], row["method"]), []).append(row)
    for (variant, method), members in groups.items():
        cells = [mean_and_sd(m[split][key] for m in members) for split, key in COLUMNS]
        extra = members[0].get("extra", "")
        lines.append(f"| {variant} | {method} | " + " | ".join(cells) + f" | `{extra}` |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exports", type=Path, required=True, help="a pipeline's output directory (--baseline)")
    parser.add_argument("--output", type=Path, default=Path("runs/rl_search"))
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "dangerous_taxi" / "reflect_rl.yaml")
    parser.add_argument("--variant", action="append", default=[], help="NAME=EXTRA_ARGS; repeatable")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--val-episodes", type=int, default=100)
    parser.add_argument("--test-episodes", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    variants = dict(v.split("=", 1) for v in args.variant) or {"shipped": ""}
    jobs = [(name, extra, method, seed) for name, extra in variants.items() for method in args.methods
            for seed in args.seeds]  # fmt: skip
    with ThreadPoolExecutor(args.jobs) as pool:
        starts = list(pool.map(lambda m: sft_start(args, m), args.methods))
        rows = list(pool.map(lambda job: one_run(args, *job), jobs))
    results_file = args.output / "results.json"
    kept = json.loads(results_file.read_text()) if results_file.is_file() else []
    fresh = {(r["variant"], r["method"], r.get("seed")) for r in starts + rows}
    rows = [r for r in kept if (r["variant"], r["method"], r.get("seed")) not in fresh] + starts + rows
    results_file.write_text(json.dumps(rows, indent=2))
    page = report(rows, args)
    (args.output / "results.md").write_text(page)
    print(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
