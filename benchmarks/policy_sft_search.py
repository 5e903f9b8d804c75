"""Search policy-SFT options on validation seeds, from one reflection model, then measure the RL-free policies.

Every variant trains stage 2 (policy SFT) from the same stage-1 export (``<exports>/reflection_sft/export``, a
pipeline's output) with its extra arguments, then plays the validation episodes (what a choice may be made on) and
the test episodes (reported only), greedy and sampled, with how often the policy follows its reflection and
overrules a wrong one.

    python benchmarks/policy_sft_search.py --exports runs/pipeline/dangerous_taxi --output runs/policy_sft_search \\
        --variant shipped= --variant mislead0.2="--model.init_args.misleading_reflections=0.2" --seeds 0 1 2

Results go to ``<output>/results.json`` and a Markdown table to ``<output>/results.md``; finished runs are reused.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rl_search import KEYS, held_out, report, run

ROOT = Path(__file__).resolve().parents[1]


def one_run(args, variant: str, extra: str, seed: int) -> dict:
    reflection = str(args.exports / "reflection_sft" / "export")
    out = args.output / variant / f"seed{seed}"
    export = out / "export"
    began = time.perf_counter()
    if not (export / "config.json").is_file():
        run(["fit", "--config", str(args.config), f"--trainer.logger.init_args.save_dir={out}",
             "--trainer.logger.init_args.name=fit", "--trainer.logger.init_args.version=0",
             "--trainer.enable_progress_bar=false", f"--model.init_args.backbone.name_or_path={reflection}",
             f"--model.init_args.reflection={reflection}", f"--model.init_args.export_dir={export}",
             f"--seed_everything={seed}", f"--data.seed={seed}", *shlex.split(extra)], out / "fit.log")  # fmt: skip
    results = {"variant": variant, "extra": extra, "method": "policy_sft", "seed": seed,
               "minutes": (time.perf_counter() - began) / 60}  # fmt: skip
    for split, episodes in (("val", args.val_episodes), ("test", args.test_episodes)):
        metrics = held_out(args.rl_config, export, reflection, split, episodes, out / split, seed)
        results[split] = {k: metrics.get(f"{split}/{k}") for k in KEYS}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exports", type=Path, required=True, help="a pipeline's output directory")
    parser.add_argument("--output", type=Path, default=Path("runs/policy_sft_search"))
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "dangerous_taxi" / "policy_sft.yaml")
    parser.add_argument("--rl-config", type=Path, default=ROOT / "configs" / "dangerous_taxi" / "reflect_rl.yaml",
                        help="the config whose held-out episodes the policies play")  # fmt: skip
    parser.add_argument("--variant", action="append", default=[], help="NAME=EXTRA_ARGS; repeatable")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--val-episodes", type=int, default=100)
    parser.add_argument("--test-episodes", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    variants = dict(v.split("=", 1) for v in args.variant) or {"shipped": ""}
    jobs = [(name, extra, seed) for name, extra in variants.items() for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda job: one_run(args, *job), jobs))
    results_file = args.output / "results.json"
    kept = json.loads(results_file.read_text()) if results_file.is_file() else []
    fresh = {(r["variant"], r["seed"]) for r in rows}
    rows = [r for r in kept if (r["variant"], r["seed"]) not in fresh] + rows
    results_file.write_text(json.dumps(rows, indent=2))
    page = report(rows, args, "Policy-SFT options searched on validation, from one reflection model")
    (args.output / "results.md").write_text(page)
    print(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
