"""The contract checker: does an environment follow the Reflect-RL contract? Each failure is reported in words.

``reflect-rl check-env <id or module:Class>`` runs it from the command line; :func:`check_environment` from Python.
It runs gymnasium's own ``check_env`` and then the checks that the players and the teacher rely on (see docs/design.md
and :class:`environments.base.TextEnv`).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass
class ContractReport:
    """What :func:`check_environment` found.

    Attributes:
        name: The environment checked.
        failures: One sentence per broken rule (empty: the environment follows the contract).
        notes: What the environment does not provide and what that means (no oracle, no teacher, no stages).
        passed: The checks that passed, in words.

    Example:
        >>> report = check_environment("ReflectRL/DangerousTaxi-v0")
        >>> report.ok, report.failures
        (True, [])
        >>> print(report)  # one line per failure (FAIL), passed check (ok) and note
    """

    name: str
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.failures

    def __str__(self) -> str:
        lines = [f"{self.name}: {'follows the contract' if self.ok else f'{len(self.failures)} problem(s)'}"]
        lines += [f"  FAIL  {text}" for text in self.failures]
        lines += [f"  ok    {text}" for text in self.passed]
        lines += [f"  note  {text}" for text in self.notes]
        return "\n".join(lines)


def make_environment(name: str, **kwargs: Any) -> gym.Env:
    """Make an environment from a registered gymnasium id or an importable ``module:Class`` (or ``module.Class``).

    Keyword arguments go to the environment's constructor.

    Raises:
        ValueError: if ``name`` is neither, naming both forms.

    Example:
        >>> env = make_environment("ReflectRL/DangerousTaxi-v0", observation_format="compact")
        >>> env = make_environment("environments.dangerous_taxi:DangerousTaxiEnv", stage="pickup")
        >>> observation, info = env.reset(seed=0)
    """
    import environments  # noqa: F401  (registers ReflectRL/...)

    if name in gym.registry:
        factory = gym.make
    else:
        module_name, sep, class_name = name.partition(":") if ":" in name else name.rpartition(".")
        if not sep:
            known = ", ".join(sorted(k for k in gym.registry if k.startswith("ReflectRL/")))
            raise ValueError(
                f"Unknown environment {name!r}: give a registered gymnasium id ({known}, or your own) or an "
                "importable class as 'package.module:ClassName'."
            )
        try:
            env_class = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"Cannot import environment class {name!r}: {error}.") from error
        factory = lambda _, **kw: env_class(**kw)  # noqa: E731
    try:
        return factory(name, **kwargs)
    except TypeError as error:
        raise ValueError(
            f"Cannot make {name!r} with arguments {kwargs}: {error}. Pass its constructor arguments."
        ) from error


def _attempt(report: ContractReport, description: str, check: Callable[[], str | None]) -> None:
    try:
        problem = check()
    except Exception as error:  # the checker reports every failure, whatever raised it
        problem = f"{type(error).__name__}: {error}"
    if problem:
        report.failures.append(f"{description}: {problem}")
    else:
        report.passed.append(description)


def _actions_problem(info: dict[str, Any], space: gym.Space) -> str | None:
    actions = info.get("actions")
    if actions is None:
        return "info has no 'actions' (the list of admissible action texts the action indexes)"
    if not isinstance(actions, Sequence) or isinstance(actions, str):
        return f"info['actions'] must be a list of strings, got {type(actions).__name__}"
    if not actions:
        return "info['actions'] is empty: a turn needs at least one admissible action"
    if not all(isinstance(a, str) for a in actions):
        kinds = sorted({type(a).__name__ for a in actions})
        return f"info['actions'] must hold strings, found {', '.join(kinds)}"
    if isinstance(space, gym.spaces.Discrete) and len(actions) > space.n:
        return f"{len(actions)} admissible actions but the action space is Discrete({space.n})"
    for key in ("oracle_action", "teacher_action"):
        index = info.get(key)
        if index is not None and not (isinstance(index, Integral) and 0 <= int(index) < len(actions)):
            return f"info[{key!r}] = {index!r} is not an index into the {len(actions)} admissible actions"
    oracle = info.get("oracle_action")
    mistakes = info.get("mistake_actions")
    if mistakes is not None:
        if any(not isinstance(m, Integral) or not 0 <= m < len(actions) for m in mistakes):
            return f"info['mistake_actions'] = {list(mistakes)!r} holds indices outside the admissible actions"
        if oracle is not None and oracle in mistakes:
            return "info['mistake_actions'] contains the oracle action"
    return None


def _play(env: gym.Env, seed: int, steps: int, options: dict[str, Any] | None) -> list[tuple[str, tuple[str, ...]]]:
    """Observations and action lists of an episode that always takes the oracle action (else the first)."""
    observation, info = env.reset(seed=seed, options=options)
    trace = [(observation, tuple(info["actions"]))]
    for _ in range(steps):
        action = info.get("oracle_action")
        observation, _, terminated, truncated, info = env.step(0 if action is None else int(action))
        trace.append((observation, tuple(info.get("actions", ()))))
        if terminated or truncated:
            break
    return trace


def _reset_refusal(env: gym.Env, seed: int, stage: str) -> str:
    """What ``reset`` says about a stage the environment lists as unavailable (it should refuse it)."""
    try:
        env.reset(seed=seed, options={"stage": stage})
    except ValueError as error:
        return str(error)
    return "the environment lists it as unavailable, yet it resets"


def check_environment(env: gym.Env | str, seed: int = 0, steps: int = 30, **kwargs: Any) -> ContractReport:
    """Check an environment against the Reflect-RL contract and report each failure in words.

    Args:
        env: An environment, a registered gymnasium id, or an importable ``module:Class``.
        seed: Seed of the episodes played.
        steps: Turns played per episode at most.
        **kwargs: Constructor arguments when ``env`` is a name.

    Example:
        >>> report = check_environment("ReflectRL/DangerousTaxi-v0")
        >>> report.ok, report.failures
        (True, [])
    """
    name = env if isinstance(env, str) else type(env.unwrapped).__name__
    if isinstance(env, str):
        env = make_environment(env, **kwargs)
    report = ContractReport(name)
    base = env.unwrapped

    def gymnasium_check() -> str | None:
        from gymnasium.utils.env_checker import check_env

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_env(base, skip_render_check=True)
        return None

    _attempt(report, "gymnasium's check_env passes", gymnasium_check)
    if not isinstance(env.action_space, gym.spaces.Discrete):
        report.failures.append(
            f"the action space must be Discrete (an index into info['actions']), got {type(env.action_space).__name__}"
        )
        return report

    infos: list[dict[str, Any]] = []

    def reset_check() -> str | None:
        observation, info = env.reset(seed=seed)
        infos.append(info)
        if not isinstance(observation, str):
            return f"the observation must be a str, got {type(observation).__name__}"
        return _actions_problem(info, env.action_space)

    _attempt(report, "reset gives a text observation and admissible actions", reset_check)
    if report.failures and "actions" not in (infos[0] if infos else {}):
        return report
    if "oracle_action" not in infos[0]:
        report.notes.append(
            "no info['oracle_action']: the SFT stages cannot label turns; train them from a JSONL dataset instead "
            "(an LLM teacher's or a human's) and run RLFT from a policy export"
        )

    def every_turn() -> str | None:
        observation, info = env.reset(seed=seed)
        for turn in range(steps):
            action = info.get("oracle_action")
            observation, reward, terminated, truncated, info = env.step(0 if action is None else int(action))
            if not isinstance(observation, str):
                return f"turn {turn + 1}: the observation must be a str, got {type(observation).__name__}"
            if terminated or truncated:
                if not isinstance(info.get("success"), bool | np.bool_):
                    return "the last info of an episode must say info['success'] (True or False)"
                return None
            if problem := _actions_problem(info, env.action_space):
                return f"turn {turn + 1}: {problem}"
        return None

    _attempt(report, "every turn has a text observation and admissible actions; the episode reports success",
             every_turn)  # fmt: skip
    _attempt(report, "the same seed gives the same episode",
             lambda: None if _play(env, seed, steps, None) == _play(env, seed, steps, None)
             else f"two episodes with seed {seed} and the same actions differed")  # fmt: skip

    def bad_action() -> str | None:
        env.reset(seed=seed)
        try:
            base.step("not an action")
        except ValueError:
            return None
        return "a non-integer action must raise ValueError (see environments.base.validate_action)"

    _attempt(report, "an action that is not an integer raises ValueError", bad_action)

    if callable(getattr(base, "teacher_reflection", None)):

        def teacher() -> str | None:
            env.reset(seed=seed)
            try:
                text = base.teacher_reflection()
            except NotImplementedError:
                return None
            return None if isinstance(text, str) and text.strip() else f"returned {text!r}, not a non-empty text"

        _attempt(report, "the teacher writes a reflection", teacher)
    else:
        report.notes.append(
            "no teacher_reflection(): stage 1 needs reflections from elsewhere (an LLM teacher or a JSONL dataset)"
        )

    stages = tuple(getattr(base, "stages", ()) or ())
    if stages:
        available = getattr(base, "available_stages", None)
        lacking = [stage for stage in stages if available is not None and stage not in available]
        for stage in lacking:
            report.notes.append(f"stage {stage!r} is not available here: {_reset_refusal(env, seed, stage)}")

        def each_stage() -> str | None:
            for stage in stages:
                if stage in lacking:
                    continue
                _, info = env.reset(seed=seed, options={"stage": stage})
                if problem := _actions_problem(info, env.action_space):
                    return f"stage {stage!r}: {problem}"
            try:
                env.reset(seed=seed, options={"stage": "no such stage"})
            except ValueError:
                return None
            return "an unknown stage must raise ValueError naming the known ones"

        resetting = [stage for stage in stages if stage not in lacking]
        _attempt(report, f"each available curriculum stage resets ({', '.join(resetting)})", each_stage)
    else:
        report.notes.append("no curriculum stages (the attribute `stages`): CurriculumCallback cannot switch stages")
    env.close()
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``reflect-rl check-env``: check an environment, print the report, exit 1 on a failure."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="reflect-rl check-env", description=__doc__.split("\n\n")[0])
    parser.add_argument("env", help="a registered gymnasium id or an importable 'package.module:ClassName'")
    parser.add_argument("--kwargs", default="{}", help='constructor arguments as JSON, e.g. \'{"stage": "small"}\'')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=30, help="turns played per episode at most")
    args = parser.parse_args(argv)
    try:
        kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as error:
        parser.error(f"--kwargs is not JSON: {error}")
    report = check_environment(args.env, seed=args.seed, steps=args.steps, **kwargs)
    print(report)
    return 0 if report.ok else 1
