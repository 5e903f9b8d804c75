"""Environment throughput: steps per second of each environment and AutoExplore task-generation time.

Usage:
    python benchmarks/env_throughput.py [--steps 20000] [--output docs/environments.md]

Actions follow the oracle 80% of the time and are uniform otherwise, so episodes have realistic lengths and end in
every way (success, danger, wrong file, horizon). Timings include ``reset`` at each episode end.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import environments  # noqa: F401
from environments.auto_explore import generate_tasks, package_root


def steps_per_second(env: gym.Env, steps: int, seed: int = 0, stage: str | None = None) -> tuple[float, int]:
    """Step ``env`` ``steps`` times (resetting at episode ends); return steps/s and the number of episodes."""
    rng = np.random.default_rng(seed)
    options = {"stage": stage} if stage else None
    _, info = env.reset(seed=seed, options=options)
    episodes = 0
    start = time.perf_counter()
    for _ in range(steps):
        if rng.random() < 0.8:
            action = info["oracle_action"]
        else:
            action = int(rng.integers(len(info["actions"])))
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            episodes += 1
            _, info = env.reset(seed=seed + episodes, options=options)
    return steps / (time.perf_counter() - start), episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--output", type=Path, default=None, help="write the markdown table here")
    args = parser.parse_args()

    rows = []
    for fmt in ("grid", "compact"):
        for stage in ("pickup", "full"):
            env = gym.make("ReflectRL/DangerousTaxi-v0", observation_format=fmt).unwrapped
            sps, episodes = steps_per_second(env, args.steps, stage=stage)
            rows.append((f"DangerousTaxi ({fmt}, {stage})", f"{sps:,.0f}", episodes))

    for package in ("gymnasium", "transformers"):
        root = package_root(package)
        start = time.perf_counter()
        tasks = generate_tasks(root, seed=0, max_tasks=200)
        elapsed = time.perf_counter() - start
        env = gym.make("ReflectRL/AutoExplore-v0", tasks=tasks).unwrapped
        sps, episodes = steps_per_second(env, args.steps // 4)
        rows.append(
            (f"AutoExplore ({package}, {len(tasks)} tasks, generated in {elapsed:.1f} s)", f"{sps:,.0f}", episodes)
        )

    generation = []
    for package in ("torch",):
        root = package_root(package)
        files = sum(1 for _ in root.rglob("*") if _.is_file())
        start = time.perf_counter()
        tasks = generate_tasks(root, seed=0, max_tasks=500)
        elapsed = time.perf_counter() - start
        depths = np.bincount([t.depth for t in tasks]).tolist()
        generation.append((package, files, len(tasks), depths, elapsed))

    machine = f"{platform.machine()}, {torch.get_num_threads()} threads, Python {platform.python_version()}"
    lines = [
        f"Machine: {machine}. Command: `python benchmarks/env_throughput.py --steps {args.steps}`",
        "",
        "| environment | steps/s | episodes |",
        "|---|---:|---:|",
        *[f"| {name} | {sps} | {episodes} |" for name, sps, episodes in rows],
        "",
        "| package tree | files | tasks | tasks by depth (0, 1, 2, ...) | generation time |",
        "|---|---:|---:|---|---:|",
        *[f"| {p} | {f:,} | {n} | {d} | {t:.1f} s |" for p, f, n, d, t in generation],
    ]
    table = "\n".join(lines)
    print(table)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("# Environment throughput\n\n" + table + "\n")


if __name__ == "__main__":
    main()
