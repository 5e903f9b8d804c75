"""The demonstration job: play each environment with its oracle and teacher and print what the models will read.

Each turn shows the policy's prompt with the teacher's reflection, the action the teacher's behaviour policy takes
(sometimes a deliberate mistake, so that corrective reflections appear) and the reward. Transcripts are also written
as JSONL to the output directory.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.behaviour import teacher_action
from datamodules.play import default_env_kwargs, make_env
from datamodules.prompt import format_action_answer, format_policy_prompt

DEMO_ENVIRONMENTS = {
    "ReflectRL/DangerousTaxi-v0": {"stage": "full", "env_kwargs": {"observation_format": "grid"}},
    "ReflectRL/AutoExplore-v0": {"stage": None, "env_kwargs": {}},
}


def play_episode(env: Any, seed: int, stage: str | None, mistake_prob: float) -> list[dict[str, Any]]:
    """Play one episode with the teacher's behaviour policy; return one record per turn."""
    rng = np.random.default_rng(seed)
    observation, info = env.reset(seed=seed, options={"stage": stage} if stage else None)
    turns: list[dict[str, Any]] = []
    done = False
    while not done:
        reflection = env.unwrapped.teacher_reflection()
        action, mistake = teacher_action(info, rng, mistake_prob)
        prompt = format_policy_prompt(observation, info["actions"], reflection)
        oracle = info.get("oracle_action")
        observation, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        turns.append(
            {
                "prompt": prompt,
                "answer": format_action_answer(action),
                "action": action,
                "oracle_action": oracle,
                "negative_example": mistake,
                "reward": float(reward),
                "done": done,
                "success": bool(info.get("success", False)),
            }
        )
    return turns


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``reflect-rl demo``."""
    parser = argparse.ArgumentParser(prog="reflect-rl demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default="runs/demo", help="where the transcripts go (default: runs/demo)")
    parser.add_argument("--episodes", type=int, default=2, help="episodes per environment")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mistake-prob", type=float, default=0.25, help="teacher's probability of a wrong action")
    args = parser.parse_args(argv)

    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = []
    for env_id, setup in DEMO_ENVIRONMENTS.items():
        env = make_env(env_id, {**default_env_kwargs(env_id, args.seed), **setup["env_kwargs"]})
        name = env_id.split("/")[1]
        path = output_dir / f"{name}.jsonl"
        with path.open("w") as transcript:
            for episode in range(args.episodes):
                seed = args.seed + episode
                turns = play_episode(env, seed, setup["stage"], args.mistake_prob)
                print(f"\n{'=' * 30} {env_id} episode {episode} (seed {seed}) {'=' * 30}")
                for step, turn in enumerate(turns):
                    flag = "  <- deliberate mistake" if turn["negative_example"] else ""
                    print(f"\n--- turn {step} ---\n{turn['prompt']}{turn['answer']}{flag}")
                    print(f"reward {turn['reward']:+.3f}")
                    transcript.write(json.dumps({"env_id": env_id, "seed": seed, "turn": step, **turn}) + "\n")
                returns = sum(t["reward"] for t in turns)
                summary.append((env_id, seed, len(turns), returns, turns[-1]["success"]))
        env.close()
        print(f"\ntranscript written to {path}")

    print(f"\n{'environment':32} {'seed':>4} {'turns':>5} {'return':>8}  success")
    for env_id, seed, length, returns, success in summary:
        print(f"{env_id:32} {seed:>4} {length:>5} {returns:>+8.3f}  {success}")
    return 0
