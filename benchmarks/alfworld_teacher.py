"""ALFWorld's searching teacher against the planner and a uniform random policy, and a check of its reflections.

Usage:
    python benchmarks/alfworld_teacher.py [--config configs/alfworld/sft_data.yaml] [--mistake-prob 0.2]

Every generated training scene of the config's ``env_kwargs`` (``num_scenes`` per task type, ``scene_seed``) is
played once by each player: the searching teacher (``info["teacher_action"]``), the planner, which knows the room
(``info["oracle_action"]``), and a uniform random policy over the shown commands. The teacher plays each scene a second
time erring on purpose with probability ``--mistake-prob`` (among ``info["mistake_actions"]``, as the SFT data does).
Every reflection of the teacher's episodes is checked with :func:`environments.alfworld.grounding.ungrounded`, and
every deliberate mistake must be followed by a corrective reflection ("To recover:").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PLAYERS = ("teacher", "planner", "random")


def play(env, game_id, player, rng, mistake_prob=0.0, checks=None):
    """One episode; returns (success, length). With ``checks``, counts reflections, ungrounded ones and mistakes."""
    from environments.alfworld.grounding import ungrounded

    observation, info = env.reset(options={"game": game_id})
    observations, done, mistaken = [observation], False, False
    while True:
        if checks is not None:
            reflection = env.teacher_reflection()
            problems = ungrounded(reflection, observations)
            checks["reflections"] += 1
            checks["ungrounded"] += bool(problems)
            if problems and len(checks["examples"]) < 3:
                checks["examples"].append(f"{reflection} -> {problems}")
            if mistaken:
                checks["corrected"] += "To recover:" in reflection
        if done:
            return bool(info["success"]), info["step"]
        mistaken = False
        if player == "random":
            action = int(rng.integers(len(info["actions"])))
        elif player == "planner":
            action = info["oracle_action"]
        elif info["mistake_actions"] and rng.random() < mistake_prob:
            action, mistaken = int(rng.choice(info["mistake_actions"])), True
            checks["mistakes"] += 1
        else:
            action = info["teacher_action"]
        observation, _, terminated, truncated, info = env.step(action)
        observations.append(observation)
        done = terminated or truncated
        if mistaken and done:
            checks["ended_by_mistake"] += 1


def main(argv: list[str] | None = None) -> None:
    """Play every training scene with each player and print the markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/alfworld/sft_data.yaml", help="the data section to read")
    parser.add_argument("--mistake-prob", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from environments.alfworld import ALFWorldEnv

    kwargs = dict(yaml.safe_load((ROOT / args.config).read_text())["env_kwargs"])
    kwargs.pop("stage", None)
    rng = np.random.default_rng(args.seed)
    results: dict[tuple[str, str], list[tuple[bool, int]]] = defaultdict(list)
    checks: dict = {"reflections": 0, "ungrounded": 0, "mistakes": 0, "corrected": 0, "ended_by_mistake": 0}
    checks["examples"] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scene_dir:
        env = ALFWorldEnv(scene_dir=scene_dir, **kwargs)
        try:
            games = env.game_ids("all")
            for game_id in games:
                task_type = game_id.split("-", 1)[0]
                for player in PLAYERS:
                    results[(task_type, player)].append(
                        play(env, game_id, player, rng, checks=checks if player == "teacher" else None)
                    )
                play(env, game_id, "teacher", rng, args.mistake_prob, checks)
        finally:
            env.close()
    seconds = time.perf_counter() - start

    task_types = sorted({task_type for task_type, _ in results})
    print(f"{len(games)} generated training scenes (env_kwargs of {args.config}), each played once per player; ")
    print(f"{seconds:.0f} s.\n")
    header = " | ".join(f"{p} success | {p} length" for p in PLAYERS)
    print(f"| task type | {header} |")
    print("|---|" + "---:|" * (2 * len(PLAYERS)))
    for task_type in [*task_types, "all"]:
        cells = []
        for player in PLAYERS:
            runs = [r for (t, p), rs in results.items() if p == player and task_type in (t, "all") for r in rs]
            cells += [f"{sum(s for s, _ in runs) / len(runs):.0%}", f"{statistics.mean(n for _, n in runs):.1f}"]
        print(f"| {task_type} | " + " | ".join(cells) + " |")
    print(
        f"\nReflections checked: {checks['reflections']} (the teacher's episodes, with and without mistakes); "
        f"ungrounded: {checks['ungrounded']}. Deliberate mistakes (p={args.mistake_prob}): {checks['mistakes']}, "
        f"followed by a corrective reflection: {checks['corrected']}, ending the episode: {checks['ended_by_mistake']}."
    )
    for example in checks["examples"]:
        print(f"  ungrounded: {example}")


if __name__ == "__main__":
    main()
