"""The one-command pipeline: reflection SFT, policy SFT, RLFT, then both policies on the same held-out test set.

``reflect-rl pipeline --env dangerous_taxi`` runs the tiny CPU profile of ``configs/<env>/``, passes each stage's
export to the next, and prints a table: the SFT policy against the Reflect-RL policy, both played greedy and sampled
with the same frozen reflection model on the same held-out test episodes. Everything goes under ``--output-dir``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

from lightning_modules.lightning_cli import run_lightning_cli

CONFIG_ROOT = Path(__file__).resolve().parents[1] / "configs"
STAGES = ("reflection_sft", "policy_sft", "reflect_rl")


def _common(output: Path, stage: str) -> list[str]:
    return [
        f"--trainer.logger.init_args.save_dir={output}",
        f"--trainer.logger.init_args.name={stage}",
        "--trainer.logger.init_args.version=0",
    ]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``reflect-rl pipeline``."""
    parser = argparse.ArgumentParser(prog="reflect-rl pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="dangerous_taxi", help="a folder of configs/ (default: dangerous_taxi)")
    parser.add_argument("--output-dir", type=Path, default=None, help="default: runs/pipeline/<env>")
    parser.add_argument("--test-episodes", type=int, default=100, help="held-out test episodes per policy")
    parser.add_argument("--skip-existing", action="store_true", help="reuse a stage whose export already exists")
    parser.add_argument("--rl-steps", type=int, default=None, help="override the RLFT config's max_steps")
    parser.add_argument(
        "--stage-args",
        action="append",
        default=[],
        metavar="STAGE=ARGS",
        help="extra CLI arguments for one stage (reflection_sft, policy_sft, reflect_rl or test), e.g. "
        "--stage-args 'reflection_sft=--trainer.max_steps=500'; repeatable",
    )
    args = parser.parse_args(argv)
    stage_args: dict[str, list[str]] = {}
    for item in args.stage_args:
        stage, _, rest = item.partition("=")
        if stage not in (*STAGES, "test"):
            parser.error(f"--stage-args: unknown stage {stage!r}; choose from {', '.join((*STAGES, 'test'))}.")
        stage_args.setdefault(stage, []).extend(shlex.split(rest))

    configs = CONFIG_ROOT / args.env
    missing = [s for s in STAGES if not (configs / f"{s}.yaml").is_file()]
    if missing:
        known = sorted(p.name for p in CONFIG_ROOT.iterdir() if p.is_dir())
        parser.error(f"configs/{args.env} lacks {', '.join(m + '.yaml' for m in missing)}; environments: {known}")
    output = args.output_dir or Path("runs") / "pipeline" / args.env
    exports = {stage: output / stage / "export" for stage in STAGES}
    timings: dict[str, float] = {}

    def fit(stage: str, *extra: str) -> None:
        if args.skip_existing and (exports[stage] / "config.json").is_file():
            print(f"[pipeline] {stage}: reusing {exports[stage]}")
            return
        print(f"[pipeline] {stage}: fitting configs/{args.env}/{stage}.yaml")
        start = time.perf_counter()
        run_lightning_cli(
            ["fit", "--config", str(configs / f"{stage}.yaml"), *_common(output, stage),
             f"--model.init_args.export_dir={exports[stage]}", *extra, *stage_args.get(stage, [])]
        )  # fmt: skip
        timings[stage] = time.perf_counter() - start

    reflection = str(exports["reflection_sft"])
    fit("reflection_sft")
    fit(
        "policy_sft",
        f"--model.init_args.backbone.name_or_path={reflection}",
        f"--model.init_args.reflection={reflection}",
    )
    rl_extra = [f"--trainer.max_steps={args.rl_steps}"] if args.rl_steps else []
    fit("reflect_rl", f"--model.init_args.backbone.name_or_path={exports['policy_sft']}",
        f"--model.init_args.reflection={reflection}", *rl_extra)  # fmt: skip

    results = {}
    for name, policy in (("SFT policy", exports["policy_sft"]), ("Reflect-RL", exports["reflect_rl"])):
        print(f"[pipeline] testing {name} on {args.test_episodes} held-out episodes")
        cli = run_lightning_cli(
            ["test", "--config", str(configs / "reflect_rl.yaml"), *_common(output, f"test_{name.split()[0].lower()}"),
             f"--model.init_args.backbone.name_or_path={policy}", f"--model.init_args.reflection={reflection}",
             f"--model.init_args.val_rollouts={args.test_episodes}", "--trainer.enable_progress_bar=false",
             *stage_args.get("test", [])]
        )  # fmt: skip
        results[name] = {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("test/")}

    lines = [
        f"Held-out test ({args.test_episodes} episodes, {args.env}, stage as configured in eval_stage):",
        f"{'policy':12} {'greedy success (95% CI)':>28} {'sampled success':>16} {'return':>8} {'length':>7}",
    ]
    for name, m in results.items():
        ci = f"{m['test/success_rate']:.0%} ({m['test/success_rate_ci_low']:.0%}-{m['test/success_rate_ci_high']:.0%})"
        lines.append(
            f"{name:12} {ci:>28} {m['test/success_rate_sampled']:>16.0%} {m['test/return']:>8.2f}"
            f" {m['test/episode_length']:>7.1f}"
        )
    lines.append("time per stage: " + ", ".join(f"{s} {t / 60:.1f} min" for s, t in timings.items()))
    table = "\n".join(lines)
    print("\n" + table)
    (output / "results.json").write_text(json.dumps({"results": results, "seconds": timings}, indent=2))
    (output / "results.txt").write_text(table + "\n")
    return 0
