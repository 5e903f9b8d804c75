"""AutoExplore v1: success within the horizon of the search teacher, the shortest-path oracle and a uniform policy.

Usage:
    python benchmarks/auto_explore_teacher.py [--config configs/auto_explore/reflect_rl.yaml] [--split test]
        [--horizon 15]

The environment is built from the config's ``data`` section (``env_kwargs`` overridden by ``<split>_env_kwargs``),
so the numbers are those of the held-out sets the pipeline evaluates on. Each task is played once per policy, from
the root (``reset(options={"task_id": ...})``); the uniform policy draws among the admissible actions with a fixed
seed. Success is also broken down by the target's depth (the curriculum stages); ``--horizon`` overrides the turns
per episode. Also printed: the tasks the generator dropped because ``cat`` would not show their evidence, the share
of tasks whose evidence the target's view shows, and the longest observation.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules.stage_config import load_stage_config  # noqa: E402
from environments.auto_explore import AutoExploreV1Env  # noqa: E402
from environments.auto_explore.file_view import read_file_view, shows_evidence  # noqa: E402
from environments.auto_explore.sandbox import Sandbox  # noqa: E402
from environments.auto_explore.tasks import generate_from_request  # noqa: E402

Policy = Callable[[dict, np.random.Generator], int]
POLICIES: dict[str, Policy] = {
    "teacher (search, v1)": lambda info, rng: int(info["teacher_action"]),
    "oracle (shortest path)": lambda info, rng: int(info["oracle_action"]),
    "uniform random": lambda info, rng: int(rng.integers(len(info["actions"]))),
}


def play(env: AutoExploreV1Env, policy: Policy, seed: int = 0) -> tuple[float, float, int, dict[int, tuple[int, int]]]:
    """Play every task of ``env`` once with ``policy``.

    Returns:
        The success rate, the mean turns, the longest observation and ``{depth: (successes, tasks)}``.

    """
    rng = np.random.default_rng(seed)
    turns, longest = 0, 0
    by_depth: dict[int, list[int]] = {}
    for task in env.tasks:
        observation, info = env.reset(seed=seed, options={"task_id": task.task_id})
        longest = max(longest, len(observation))
        done = False
        while not done:
            observation, _, terminated, truncated, info = env.step(policy(info, rng))
            longest, turns, done = max(longest, len(observation)), turns + 1, terminated or truncated
        counts = by_depth.setdefault(task.depth, [0, 0])
        counts[0] += bool(info["success"])
        counts[1] += 1
    successes = sum(won for won, _ in by_depth.values())
    depths = {depth: (won, total) for depth, (won, total) in sorted(by_depth.items())}
    return successes / len(env.tasks), turns / len(env.tasks), longest, depths


def main(argv: list[str] | None = None) -> int:
    """Print the success rates (and generation statistics) of the three policies on one split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/auto_explore/reflect_rl.yaml")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--horizon", type=int, default=None, help="turns per episode (default: the config's)")
    args = parser.parse_args(argv)
    data = load_stage_config(args.config)["data"]
    kwargs = {**data.get("env_kwargs", {}), **data.get(f"{args.split}_env_kwargs", {})}
    request = kwargs.pop("tasks")
    if args.horizon is not None:
        kwargs["horizon"] = args.horizon
    cat_chars = kwargs.get("cat_chars", 600)
    dropped: Counter[str] = Counter()
    tasks = generate_from_request(request, kwargs.get("max_actions", 64), cat_chars, dropped)
    env = AutoExploreV1Env(tasks, **kwargs)
    shown = sum(
        shows_evidence(read_file_view(Sandbox(t.root), t.target_parts[0], 1, cat_chars), t.kind, t.subject)
        for t in env.tasks
    )
    print(f"config {args.config}, split {args.split}: {len(env.tasks)} tasks, horizon {env.horizon}")
    print(f"evidence shown when the target is read: {shown}/{len(env.tasks)}; dropped at generation: {dict(dropped)}")
    print(f"{'policy':<24} {'success':>8} {'turns':>6} {'longest obs':>12}  success by target depth")
    for name, policy in POLICIES.items():
        rate, turns, longest, depths = play(env, policy)
        by_depth = "  ".join(f"{depth}: {won}/{total} ({won / total:.0%})" for depth, (won, total) in depths.items())
        print(f"{name:<24} {rate:>8.1%} {turns:>6.1f} {longest:>12}  {by_depth}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
