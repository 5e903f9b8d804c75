"""ALFWorld on the real engine: reset and step times, the expert on every generated scene, rollout episodes per minute.

Usage:
    python benchmarks/alfworld_timings.py [--reflection DIR --policy DIR] [--output docs/alfworld.md]

Reset and step times are wall-clock at the environment's API on generated scenes of each task type (they include the
pipe to the engine's worker process). The rollout plays ``--episodes`` episodes with ``--envs`` environments in
lock-step through :class:`lightning_modules.agent.Agent` (the reflection model writes every turn's analysis, the
policy scores the admissible commands in one forward pass), once with the workers overlapped (every lane's step is
sent before any answer is awaited) and once one environment after the other, the naive way. Without exports,
untrained embedded tiny GPT-2s play (their reflections run to the token budget, the slowest case).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from players import load_players  # noqa: E402

import datamodules.rollout as rollout  # noqa: E402
from datamodules import PromptEncoder  # noqa: E402
from lightning_modules import ActionHead, Agent, Reflector, TinyGPT2Spec  # noqa: E402

ENV_ID = "ReflectRL/ALFWorld-v1"
ENV_KWARGS = {"stage": "all", "num_scenes": 8, "max_actions": 16, "history_length": 0, "horizon": 15}
HOW = __doc__.split("\n\n")[2].strip()


def env_timings(repeats: int) -> list[str]:
    """Per task type: scene size, expert plan, first reset, reset and step times (mean ± sd)."""
    from environments.alfworld import TASK_TYPES, ALFWorldEnv

    rows = []
    with tempfile.TemporaryDirectory() as scene_dir:
        env = ALFWorldEnv(num_scenes=1, scene_dir=scene_dir, horizon=1000)
        start = time.perf_counter()
        env.reset(seed=0)
        startup = time.perf_counter() - start
        for task_type in TASK_TYPES:
            game_id = env.game_ids(task_type)[0]
            game = next(g for g in env.games if g.game_id == game_id)
            start = time.perf_counter()
            _, info = env.reset(options={"game": game_id})
            first = time.perf_counter() - start
            resets = []
            for _ in range(repeats):
                start = time.perf_counter()
                _, info = env.reset(options={"game": game_id})
                resets.append(time.perf_counter() - start)
            plan = len(info["expert_plan"])
            steps, turn = [], 0
            while len(steps) < repeats:
                _, info = env.reset(options={"game": game_id})
                done = False
                while not done and len(steps) < repeats:
                    mistake = turn % 3 == 0 and info["mistake_actions"]
                    action = info["mistake_actions"][0] if mistake else info["oracle_action"]
                    turn += 1
                    start = time.perf_counter()
                    _, _, terminated, truncated, info = env.step(action)
                    steps.append(time.perf_counter() - start)
                    done = terminated or truncated
            rows.append(
                f"| {task_type} | {len(game.scene.receptacles)} | {len(game.scene.items)} | {plan} | {first:.2f} | "
                f"{statistics.mean(resets):.3f} ± {statistics.stdev(resets):.3f} | "
                f"{statistics.mean(steps) * 1000:.0f} ± {statistics.stdev(steps) * 1000:.0f} |"
            )
        env.close()
    return [
        f"A new environment's first reset (start the worker process, import the engine, build and load a scene): "
        f"{startup:.2f} s. Then, per task type ({repeats} resets and {repeats} steps each; a third of the steps are "
        "deliberate mistakes):",
        "",
        "| task type | receptacles | objects | expert plan | first reset of a scene s | reset s | step ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]


def expert_sweep(num_scenes: int) -> list[str]:
    """The planner expert on every generated scene of each task type."""
    from environments.alfworld import TASK_TYPES, ALFWorldEnv

    rows = []
    with tempfile.TemporaryDirectory() as scene_dir:
        env = ALFWorldEnv(num_scenes=num_scenes, scene_dir=scene_dir)
        for task_type in TASK_TYPES:
            wins, lengths = 0, []
            for game_id in env.game_ids(task_type):
                _, info = env.reset(options={"game": game_id})
                lengths.append(len(info["expert_plan"]))
                done = False
                while not done:
                    _, _, terminated, truncated, info = env.step(info["oracle_action"])
                    done = terminated or truncated
                wins += bool(info["success"])
            rows.append(f"| {task_type} | {wins}/{len(lengths)} | {min(lengths)} / {statistics.mean(lengths):.1f} / "
                        f"{max(lengths)} |")  # fmt: skip
        env.close()
    return ["| task type | solved by the expert | plan length min / mean / max |", "|---|---:|---|", *rows]


def players(args: argparse.Namespace):
    tiny = TinyGPT2Spec(n_layer=2, n_embd=128, n_head=4, n_positions=384, num_labels=16)
    return load_players(args.reflection, args.policy, ENV_ID, ENV_KWARGS, tiny, samples=20)


def rollout_rates(args: argparse.Namespace) -> list[str]:
    """Episodes per minute of lock-step rollouts with reflections, workers overlapped and one after the other."""
    reflection, policy, tokenizer, what = players(args)
    encoder = PromptEncoder(tokenizer, max_prompt_tokens=320, max_reflection_tokens=args.max_reflection_tokens)
    agent = Agent(policy, ActionHead(tokenizer, ENV_KWARGS["max_actions"]), encoder, Reflector(reflection, encoder, 0))
    envs = rollout.make_envs(ENV_ID, ENV_KWARGS, args.envs)
    agent.play(envs, range(args.envs), greedy=False)  # warm up: start the workers, build the scenes
    overlaps, rows = rollout._overlaps, []
    for name in ("workers overlapped", "one environment after the other"):
        rollout._overlaps = overlaps if name == "workers overlapped" else (lambda env: False)
        start = time.perf_counter()
        results = agent.play(envs, range(1000, 1000 + args.episodes), greedy=False)
        seconds = time.perf_counter() - start
        steps = sum(r.length for r in results)
        rows.append(f"| {name} | {args.episodes / seconds * 60:.1f} | {steps / seconds:.1f} | {seconds:.1f} |")
    rollout._overlaps = overlaps
    for env in envs:
        env.close()
    return [
        f"{args.episodes} episodes (stage `all`, sampled actions, horizon {ENV_KWARGS['horizon']}) with {args.envs} "
        f"environments in lock-step; players: {what}; reflections up to {args.max_reflection_tokens} tokens.",
        "",
        "| rollout | episodes/min | environment steps/s | seconds |",
        "|---|---:|---:|---:|",
        *rows,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reflection", help="a stage-1 export (default: an untrained tiny model)")
    parser.add_argument("--policy", help="a stage-2 export")
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--max-reflection-tokens", type=int, default=64)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    sections = [
        "# ALFWorld on the real engine: times and throughput",
        "",
        HOW.replace("\n", " "),
        "",
        f"Command: `python benchmarks/alfworld_timings.py {' '.join(sys.argv[1:])}`; {platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}.",
        "",
        "## Reset and step",
        "",
        *env_timings(args.repeats),
        "",
        "## The expert on the generated scenes",
        "",
        *expert_sweep(num_scenes=16),
        "",
        "## Rollouts",
        "",
        *rollout_rates(args),
    ]
    page = "\n".join(sections) + "\n"
    print(page)
    if args.output:
        args.output.write_text(page)


if __name__ == "__main__":
    main()
