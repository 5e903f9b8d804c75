"""Smoke run of the SmolLM2 profiles: the three stages for a few steps each and the held-out test, timed.

Usage:
    python benchmarks/smollm2_smoke.py [--output-dir runs/benchmarks/smollm2_smoke] [--model DIR]
    python benchmarks/smollm2_smoke.py --cpu --tiny-llama  # no GPU, no SmolLM2: a tiny Llama built on the fly

On a GPU it runs ``configs/dangerous_taxi/gpu_smollm2_*.yaml`` (bf16, LoRA) on the converted SmolLM2-135M-Instruct
(``make smollm2 && reflect-rl convert-gguf``); ``--cpu`` runs the CPU profiles ``smollm2_*.yaml`` instead, and
``--tiny-llama`` replaces SmolLM2 by a tiny random Llama with a ChatML tokenizer (the test of this script). Each stage
runs in this process through LightningCLI with its profile and a few overrides (steps, held-out episodes, where to
write). The wall time and peak memory of each stage and the held-out test's success rates go to ``smoke.json`` and
``smoke.md`` in the output directory. On CUDA the peak is the stage's ``torch.cuda.max_memory_allocated``; on CPU the
process's peak resident set size so far (it only grows).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lightning_modules.lightning_cli import run_lightning_cli  # noqa: E402
from lightning_modules.pretrained import SMOLLM2_GGUF, converted_dir  # noqa: E402

PROFILES = ROOT / "configs" / "dangerous_taxi"
STAGES = ("reflection_sft", "policy_sft", "reflect_rl")


def peak_memory_mb(cuda: bool) -> float:
    """The stage's peak CUDA memory, or on CPU the process's peak resident set size so far (MB)."""
    if cuda:
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def tiny_llama(directory: Path) -> Path:
    """A tiny random Llama with a ChatML tokenizer trained on DangerousTaxi's text (labels A-F single tokens)."""
    from datamodules import RolloutDataModule
    from lightning_modules.pretrained import save_tiny_llama

    texts = RolloutDataModule(env_kwargs={"observation_format": "grid"}, num_envs=2).sample_texts(4)
    return save_tiny_llama(directory, texts, num_labels=6)


def stage_args(args: argparse.Namespace, stage: str, out: Path, model: Path) -> list[str]:
    """The command line of one stage (``test``: the RL profile on the RL export): its profile and the overrides."""
    exports = {s: out / s / "export" for s in STAGES}
    steps = args.rl_steps if stage == "reflect_rl" else args.steps
    profile = "reflect_rl" if stage == "test" else stage
    argv = [
        "--config", str(PROFILES / f"{args.prefix}{profile}.yaml"), "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_progress_bar=false", f"--trainer.logger.init_args.save_dir={out}",
        f"--trainer.logger.init_args.name={stage}", "--trainer.logger.init_args.version=0",
    ]  # fmt: skip
    if stage != "test":
        argv += [f"--trainer.max_steps={steps}", f"--trainer.val_check_interval={steps}"]
        argv += [f"--model.init_args.export_dir={exports[stage]}"]
    if stage in ("reflection_sft", "policy_sft"):
        argv += [f"--model.init_args.backbone.name_or_path={model}", f"--data.val_episodes={args.episodes}"]
        argv += [f"--data.batch_size={args.batch_size}"]
    if stage == "reflection_sft":
        argv += [f"--model.init_args.generate_samples={args.episodes}"]
    else:
        argv += [f"--model.init_args.reflection={exports['reflection_sft']}"]
        argv += [f"--model.init_args.val_rollouts={args.episodes}"]
    if stage in ("reflect_rl", "test"):
        policy = exports["reflect_rl" if stage == "test" else "policy_sft"]
        argv += [f"--model.init_args.backbone.name_or_path={policy}"]
        argv += [f"--data.episodes_per_step={args.rl_episodes}", f"--data.num_envs={args.rl_episodes}"]
    if args.cpu:
        argv += ["--trainer.accelerator=cpu", "--trainer.precision=32-true"]
    if args.max_reflection_tokens:
        argv += [f"--data.max_reflection_tokens={args.max_reflection_tokens}"]
    return argv


def run(args: argparse.Namespace) -> dict:
    """Run the stages and the test; return the report (also written to smoke.json and smoke.md)."""
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    cuda = not args.cpu and torch.cuda.is_available()
    model = tiny_llama(out / "tiny_llama") if args.tiny_llama else args.model
    if not (Path(model) / "config.json").is_file():
        raise SystemExit(f"{model} holds no model: run `make smollm2` and `reflect-rl convert-gguf` (docs/smollm2.md).")
    stages: dict[str, dict[str, float]] = {}

    def timed(name: str, argv: list[str]):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        cli = run_lightning_cli(argv)
        stages[name] = {"seconds": round(time.perf_counter() - start, 1), "peak_memory_mb": round(peak_memory_mb(cuda))}
        print(f"[smoke] {name}: {stages[name]}", flush=True)
        return cli

    for stage in STAGES:
        timed(stage, ["fit", *stage_args(args, stage, out, model)])
    cli = timed("test", ["test", *stage_args(args, "test", out, model)])
    metrics = {k: round(float(v), 4) for k, v in cli.trainer.callback_metrics.items() if k.startswith("test/")}
    device = torch.cuda.get_device_name() if cuda else f"CPU ({platform.processor() or platform.machine()})"
    report = {
        "model": str(model), "device": device, "profiles": f"configs/dangerous_taxi/{args.prefix}*.yaml",
        "steps": args.steps, "rl_steps": args.rl_steps, "test_episodes": args.episodes,
        "total_seconds": round(sum(s["seconds"] for s in stages.values()), 1), "stages": stages, "test": metrics,
    }  # fmt: skip
    (out / "smoke.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "smoke.md").write_text(markdown(report))
    return report


def markdown(report: dict) -> str:
    """The report as a small markdown table."""
    memory = "peak CUDA memory (MB)" if "CPU" not in report["device"] else "peak RSS so far (MB)"
    lines = [
        f"SmolLM2 smoke run on {report['device']}: {report['model']}, {report['profiles']}, {report['steps']} SFT "
        f"steps, {report['rl_steps']} RL steps, {report['test_episodes']} test episodes; "
        f"{report['total_seconds']:.0f} s in all.",
        "",
        f"| stage | seconds | {memory} |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {s['seconds']:.1f} | {s['peak_memory_mb']} |" for name, s in report["stages"].items()]
    test = report["test"]
    if "test/success_rate" in test:
        lines += ["", f"Held-out test: greedy success {test['test/success_rate']:.0%}, sampled "
                  f"{test.get('test/success_rate_sampled', float('nan')):.0%}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=Path("runs/benchmarks/smollm2_smoke"))
    parser.add_argument("--model", type=Path, default=converted_dir(SMOLLM2_GGUF),
                        help="the converted SmolLM2 (default: where reflect-rl convert-gguf writes it)")  # fmt: skip
    parser.add_argument("--cpu", action="store_true", help="the CPU profiles (smollm2_*.yaml), on the CPU")
    parser.add_argument("--tiny-llama", action="store_true", help="a tiny random Llama instead of SmolLM2")
    parser.add_argument("--steps", type=int, default=5, help="steps of each SFT stage")
    parser.add_argument("--rl-steps", type=int, default=3, help="RL steps")
    parser.add_argument("--rl-episodes", type=int, default=8, help="episodes per RL step")
    parser.add_argument("--episodes", type=int, default=16, help="held-out episodes (validation and test)")
    parser.add_argument("--batch-size", type=int, default=None, help="SFT batch size (default: the profile's)")
    parser.add_argument("--max-reflection-tokens", type=int, default=None, help="default: the profile's")
    args = parser.parse_args(argv)
    args.prefix = "smollm2_" if args.cpu else "gpu_smollm2_"
    if args.batch_size is None:
        args.batch_size = 8 if args.cpu else 32
    report = run(args)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
