"""Rollout throughput with reflections on: environments batched in lock-step against one at a time, same models.

Usage:
    python benchmarks/rollout_throughput.py [--reflection DIR --policy DIR] [--output docs/rollout_throughput.md]

Both ways play the same DangerousTaxi episodes (the same seeds) with the same reflection model and policy through
:class:`lightning_modules.agent.Agent`: every turn the reflection model writes an analysis (one batched, KV-cached
``generate`` call for all lanes) and the policy scores every action in one forward pass. *Batched* plays
``--envs`` environments in lock-step; *one at a time* plays one environment, so each call has a batch of one. The
reflection memo is off in both, so every turn really generates. Without exports, fresh tiny models are built (the
embedded default, untrained: their reflections run to the token budget, the slowest case).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from players import load_players  # noqa: E402

from datamodules import PromptEncoder  # noqa: E402
from datamodules.rollout import make_envs  # noqa: E402
from lightning_modules import ActionHead, TinyGPT2Spec  # noqa: E402
from lightning_modules.agent import Agent  # noqa: E402
from lightning_modules.reflection import Reflector  # noqa: E402

ENV_ID = "ReflectRL/DangerousTaxi-v0"
HOW = __doc__.split("\n\n")[2].strip()  # the paragraph that says what is compared
ENV_KWARGS = {"observation_format": "compact"}


def players(args: argparse.Namespace):
    tiny = TinyGPT2Spec(n_layer=2, n_embd=128, n_head=4, n_positions=256, num_labels=6)
    return load_players(args.reflection, args.policy, ENV_ID, ENV_KWARGS, tiny, samples=100)


def measure(agent: Agent, lanes: int, seeds: list[int], stage: str) -> tuple[float, int, float]:
    envs = make_envs(ENV_ID, ENV_KWARGS, lanes)
    start = time.perf_counter()
    results = agent.play(envs, seeds, stage=stage, greedy=False)
    seconds = time.perf_counter() - start
    steps = sum(r.length for r in results)
    return steps / seconds, steps, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reflection", help="stage-1 export (default: a fresh tiny model)")
    parser.add_argument("--policy", help="stage-2 export (default: a fresh tiny model)")
    parser.add_argument("--envs", type=int, default=32)
    parser.add_argument("--episodes", type=int, default=64, help="episodes per measurement (the same seeds)")
    parser.add_argument("--stage", default="full")
    parser.add_argument("--max-reflection-tokens", type=int, default=96)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    reflection, policy, tokenizer, what = players(args)
    encoder = PromptEncoder(tokenizer, max_prompt_tokens=192, max_reflection_tokens=args.max_reflection_tokens)
    agent = Agent(policy, ActionHead(tokenizer, 6), encoder, Reflector(reflection, encoder, cache_size=0))
    seeds = list(range(3_000_000, 3_000_000 + args.episodes))
    measure(agent, args.envs, seeds[:4], args.stage)  # warm-up
    torch.manual_seed(1)
    batched = measure(agent, args.envs, seeds, args.stage)
    torch.manual_seed(1)
    single = measure(agent, 1, seeds, args.stage)
    reflected = agent.reflector.generated
    rows = [(f"{args.envs} environments in lock-step", *batched), ("one environment at a time", *single)]
    lines = [
        "| rollout | environment steps/s | steps | seconds |",
        "|---|---:|---:|---:|",
        *[f"| {name} | {rate:.1f} | {steps} | {seconds:.1f} |" for name, rate, steps, seconds in rows],
        "",
        f"Batching speed-up: **{batched[0] / single[0]:.1f}x** environment steps per second.",
    ]
    table = "\n".join(lines)
    print(table)
    if args.output:
        command = "python benchmarks/rollout_throughput.py " + " ".join(sys.argv[1:])
        args.output.write_text(
            "# Rollout throughput with reflections on\n\n"
            f"{HOW.replace(chr(10), ' ')}\n\n"
            f"Command: `{command}`\n\n"
            f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}. "
            f"Models: {what}. {args.episodes} episodes of stage `{args.stage}` per row (sampled actions; "
            f"{reflected} reflections generated in all, up to {args.max_reflection_tokens} tokens each).\n\n"
            f"{table}\n"
        )


if __name__ == "__main__":
    main()
