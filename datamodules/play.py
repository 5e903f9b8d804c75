"""Play any registered environment by hand and see exactly what the models read.

``reflect-rl play ReflectRL/DangerousTaxi-v0 --stage pickup --seed 3`` shows the policy's prompt each turn. Type an
action's label to take it, ``reflect`` to put the teacher's reflection into the prompt, ``oracle`` to see the optimal
action, ``reset`` for a new episode, ``quit`` to stop.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from datamodules.prompt import action_label, format_policy_prompt, label_index

HELP = """commands:
  <label>   take that action (A, B, ...; case-insensitive)
  reflect   show the teacher's reflection in the prompt (r)
  oracle    show the oracle's action (o)
  reset     start a new episode with the next seed
  help      this text (h, ?)
  quit      stop (q, or end of input)"""


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """Make a registered environment, with a clear error for an unknown id.

    Args:
        env_id: A gymnasium id such as ``ReflectRL/DangerousTaxi-v0``.
        env_kwargs: Keyword arguments for the environment's constructor.
    """
    from datamodules.rollout import make_envs

    try:
        return make_envs(env_id, env_kwargs, 1)[0]
    except ValueError as error:  # an unknown id
        message = str(error)
        raise SystemExit(f"error: {message[:1].lower()}{message[1:]}") from error
    except TypeError as error:
        raise SystemExit(f"error: bad environment arguments for {env_id}: {error}") from error


def default_env_kwargs(env_id: str, seed: int = 0) -> dict[str, Any]:
    """Arguments that make ``env_id`` playable with nothing else (AutoExplore v0: tasks from an installed package).

    AutoExplore v1 has default tasks of its own.
    """
    if env_id == "ReflectRL/AutoExplore-v0":
        from environments.auto_explore import generate_tasks, package_root

        return {"tasks": generate_tasks(package_root("gymnasium"), seed=seed, max_tasks=60)}
    return {}


class Session:
    """One person playing one environment; reads commands and writes the screen through the given functions."""

    def __init__(
        self,
        env: gym.Env,
        seed: int = 0,
        stage: str | None = None,
        read: Callable[[str], str] = input,
        write: Callable[[str], None] = print,
    ) -> None:
        self.env, self.seed, self.stage, self.read, self.write = env, seed, stage, read, write
        self.episodes = 0

    def _reset(self) -> tuple[str, dict[str, Any]]:
        options = {"stage": self.stage} if self.stage is not None else None
        observation, info = self.env.reset(seed=self.seed + self.episodes, options=options)
        self.episodes += 1
        self.write(f"=== episode {self.episodes} (seed {self.seed + self.episodes - 1}, stage {info.get('stage')}) ===")
        return observation, info

    def run(self) -> int:
        """Play until ``quit`` or end of input; return the number of episodes played."""
        observation, info = self._reset()
        reflection: str | None = None
        episode_return = 0.0
        self.write(format_policy_prompt(observation, info["actions"], reflection))
        while True:
            try:
                command = self.read("> ").strip()
            except EOFError:
                return self.episodes
            lowered = command.lower()
            if lowered in ("q", "quit", "exit"):
                return self.episodes
            if lowered in ("h", "help", "?", ""):
                self.write(HELP)
                continue
            if lowered in ("r", "reflect"):
                reflection = self.env.unwrapped.teacher_reflection()
                self.write(format_policy_prompt(observation, info["actions"], reflection))
                continue
            if lowered in ("o", "oracle"):
                oracle = info.get("oracle_action")
                if oracle is None:
                    self.write("this environment knows no oracle action here")
                else:
                    self.write(f"oracle: {action_label(oracle)}. {info['actions'][oracle]}")
                continue
            if lowered == "reset":
                observation, info = self._reset()
                reflection, episode_return = None, 0.0
                self.write(format_policy_prompt(observation, info["actions"], reflection))
                continue
            try:
                index = label_index(command, len(info["actions"]))
            except ValueError as error:
                self.write(f"{error} Type help for commands.")
                continue
            observation, reward, terminated, truncated, info = self.env.step(index)
            episode_return += float(reward)
            reflection = None
            self.write(f"reward {reward:+.3f}")
            if terminated or truncated:
                outcome = "success" if info.get("success") else ("truncated" if truncated else "failure")
                self.write(observation)
                self.write(f"=== episode over: {outcome}, return {episode_return:+.3f} ===")
                observation, info = self._reset()
                episode_return = 0.0
            self.write(format_policy_prompt(observation, info["actions"], reflection))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``reflect-rl play``."""
    parser = argparse.ArgumentParser(prog="reflect-rl play", description=__doc__.split("\n\n")[0])
    parser.add_argument("env_id", nargs="?", default="ReflectRL/DangerousTaxi-v0", help="registered environment id")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (the next ones count up)")
    parser.add_argument("--stage", default=None, help="curriculum stage (default: the environment's)")
    parser.add_argument("--env-kwargs", default=None, help="constructor arguments as JSON, e.g. '{\"horizon\": 30}'")
    args = parser.parse_args(argv)
    kwargs = default_env_kwargs(args.env_id, args.seed)
    if args.env_kwargs:
        try:
            kwargs.update(json.loads(args.env_kwargs))
        except json.JSONDecodeError as error:
            parser.error(f"--env-kwargs is not valid JSON: {error}")
    env = make_env(args.env_id, kwargs)
    try:
        Session(env, seed=args.seed, stage=args.stage).run()
    except ValueError as error:  # e.g. an unknown stage
        raise SystemExit(f"error: {error}") from error
    finally:
        env.close()
    return 0
