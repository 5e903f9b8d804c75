"""Environments played in lock-step: the teacher's stream of SFT turns, and episodes played by a model.

Both run in the training process (``num_workers=0``), so a model that acts is always the live one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from datamodules.behaviour import require_oracle, teacher_action, teacher_label
from datamodules.llm.teacher import TeacherContext, turn_context
from datamodules.prompt import recommended_action


@dataclass
class Turn:
    """One decision as the players see it.

    Attributes:
        observation: The environment's text.
        actions: Admissible action texts, in the order shown (shuffled when label shuffling is on).
        reflection: The teacher's reflection on this state (``None`` where none was asked for).
        oracle: Index of the oracle action in ``actions`` (``None`` if the environment knows none); in teacher
            rollouts the teacher's action (:func:`~datamodules.behaviour.teacher_label`), the SFT label.
        negative: Whether the behaviour policy's action at this turn was a deliberate mistake.
        order: ``order[i]`` is the environment's action index of shown action ``i``.
        seed: Seed of the episode.
        step: Turn number within the episode.
        taken: Index in ``actions`` of the action the behaviour policy took (teacher rollouts; ``None`` elsewhere).

    Example:
        >>> turn = Turn("Taxi at row 3, column 0. ...", ["go south", "go north"], reflection=None, oracle=1)
        >>> [turn] = TeacherStream([gym.make("ReflectRL/DangerousTaxi-v0")], stage="pickup").step()
        >>> turn.actions[turn.oracle], turn.reflection  # 'go north', '... so the best action now is to go north.'
    """

    observation: str
    actions: list[str]
    reflection: str | None
    oracle: int | None
    negative: bool = False
    order: list[int] = field(default_factory=list)
    seed: int = 0
    step: int = 0
    taken: int | None = None


@dataclass
class EpisodeResult:
    """What an episode came to: its seed, success, return, length in turns and a transcript of every turn.

    Example:
        >>> [result] = play_episodes(envs, seeds=[7], act=lambda turns: [turn.oracle for turn in turns])
        >>> result.seed, result.success, result.episode_return, result.length
        (7, True, ..., ...)
        >>> result.transcript[0]["action"], result.info["stage"]
    """

    seed: int
    success: bool
    episode_return: float
    length: int
    transcript: list[dict[str, Any]] = field(default_factory=list)
    #: The environment's last ``info`` (without the action list), e.g. AutoExplore's ``depth`` of the target.
    info: dict[str, Any] = field(default_factory=dict)


def make_envs(env_id: str, env_kwargs: dict[str, Any] | None, count: int) -> list[gym.Env]:
    """Make ``count`` instances of an environment: a registered gymnasium id or an importable ``module:Class``.

    Raises:
        ValueError: for a name that is neither, or arguments the environment does not take.
    """
    from environments.check import make_environment

    return [make_environment(env_id, **(env_kwargs or {})) for _ in range(count)]


def _overlaps(env: gym.Env) -> bool:
    base = env.unwrapped
    return callable(getattr(base, "step_async", None)) and callable(getattr(base, "reset_async", None))


def reset_all(
    envs: Sequence[gym.Env], seeds: Sequence[int], options: dict[str, Any] | None
) -> list[tuple[str, dict[str, Any]]]:
    """Reset each environment with its seed; those that run in a worker process reset concurrently.

    An environment overlaps when its unwrapped env has ``reset_async(seed=, options=)`` / ``reset_wait()`` and
    ``step_async(action)`` / ``step_wait()`` (ALFWorld's engine runs in one process per environment); the others
    are reset one after the other.
    """
    for env, seed in zip(envs, seeds, strict=True):
        if _overlaps(env):
            env.unwrapped.reset_async(seed=seed, options=options)
    return [
        env.unwrapped.reset_wait() if _overlaps(env) else env.reset(seed=seed, options=options)
        for env, seed in zip(envs, seeds, strict=True)
    ]


def step_all(envs: Sequence[gym.Env], actions: Sequence[int]) -> list[tuple[str, float, bool, bool, dict[str, Any]]]:
    """Step each environment with its action; those that run in a worker process step concurrently (see reset_all)."""
    for env, action in zip(envs, actions, strict=True):
        if _overlaps(env):
            env.unwrapped.step_async(action)
    return [
        env.unwrapped.step_wait() if _overlaps(env) else env.step(action)
        for env, action in zip(envs, actions, strict=True)
    ]


def _shown(
    info: dict[str, Any], rng: np.random.Generator | None, label: int | None = None
) -> tuple[list[str], list[int], int | None]:
    """The actions in the order shown, that order, and the shown index of ``label`` (default: the oracle's)."""
    actions = list(info["actions"])
    order = list(rng.permutation(len(actions))) if rng is not None else list(range(len(actions)))
    order = [int(i) for i in order]
    oracle = info.get("oracle_action") if label is None else label
    shown_oracle = order.index(int(oracle)) if oracle is not None and 0 <= int(oracle) < len(actions) else None
    return [actions[i] for i in order], order, shown_oracle


class TeacherStream:
    """Plays a batch of environments in lock-step with the teacher's behaviour policy and yields turns forever.

    Each turn carries the teacher's reflection and action (``info["teacher_action"]`` where the environment gives
    one, else the oracle's); with probability ``mistake_prob`` the behaviour policy then takes a wrong action (a
    negative example), so the next turn's reflection is corrective.

    Args:
        envs: The environments (one per lane).
        seed: First episode seed; lane ``i``'s episodes use seeds ``seed + i``, ``seed + i + len(envs)``, ...
        stage: Curriculum stage passed to ``reset`` (``None``: the environment's default).
        mistake_prob: Probability of a deliberate wrong action; read at every turn, so it can be changed while
            streaming (see :class:`callbacks.NegativeExampleCallback`).
        shuffle_actions: Show the admissible actions in a random order each turn (the paper's ``shuffle_action``).
        with_reflection: Ask the teacher for a reflection at every turn.
        teacher: Who writes the reflections: ``None`` for the environment's rule-based teacher
            (``env.unwrapped.teacher_reflection()``), or an object with ``reflect(contexts) -> list[str]`` such as
            :class:`datamodules.llm.LLMTeacher`, asked once per turn for all lanes together with a
            :class:`~datamodules.llm.TeacherContext` each (state, actions, the oracle's action as a spoiler, the last
            action and whether it was a deliberate mistake).

    Example:
        >>> envs = [gym.make("ReflectRL/DangerousTaxi-v0") for _ in range(4)]
        >>> stream = TeacherStream(envs, seed=0, stage="pickup", mistake_prob=0.2)
        >>> turns = stream.step()  # one Turn per lane, with its reflection and oracle action
        >>> episodes = stream.episodes(32)  # the turns of 32 whole episodes
    """

    def __init__(
        self,
        envs: Sequence[gym.Env],
        seed: int = 0,
        stage: str | None = None,
        mistake_prob: float = 0.0,
        shuffle_actions: bool = False,
        with_reflection: bool = True,
        teacher: Any = None,
    ) -> None:
        self.envs = list(envs)
        self.seed, self.stage = seed, stage
        self.mistake_prob = mistake_prob
        self.shuffle_actions = shuffle_actions
        self.with_reflection = with_reflection
        self.teacher = teacher
        self.rng = np.random.default_rng(seed)
        self._next_seed = seed
        self._lanes: list[tuple[str, dict[str, Any], int, int] | None] = [None] * len(self.envs)
        #: Per lane: the text of the action taken at the previous turn and whether it was a deliberate mistake.
        self._previous: list[tuple[str, bool] | None] = [None] * len(self.envs)

    def _reset_finished(self) -> None:
        lanes = [lane for lane, state in enumerate(self._lanes) if state is None]
        seeds = list(range(self._next_seed, self._next_seed + len(lanes)))
        self._next_seed += len(lanes)
        options = {"stage": self.stage} if self.stage is not None else None
        started = reset_all([self.envs[lane] for lane in lanes], seeds, options)
        for lane, seed, (observation, info) in zip(lanes, seeds, started, strict=True):
            self._lanes[lane] = (observation, info, seed, 0)
            self._previous[lane] = None

    def _reflections(self) -> list[str | None]:
        """The teacher's reflection on every lane's current state (the LLM teacher's requests go out together)."""
        if not self.with_reflection:
            return [None] * len(self.envs)
        if self.teacher is None:
            try:
                return [env.unwrapped.teacher_reflection() for env in self.envs]
            except (AttributeError, NotImplementedError) as error:
                name = type(self.envs[0].unwrapped).__name__
                raise ValueError(
                    f"{name} has no rule-based teacher (teacher_reflection() failed: {error!r}). Let an LLM write the "
                    "reflections (--data.teacher='{base_url: ..., model: ...}'), train from a JSONL dataset "
                    "(--data.dataset=turns.jsonl), or train without reflections (--model.init_args.reflection=null)."
                ) from error
        contexts = []
        for (observation, info, _, _), previous in zip(self._lanes, self._previous, strict=True):
            actions = list(info["actions"])
            label = teacher_label(info)  # step() checked that every lane has one
            spoiler = actions[label] if 0 <= label < len(actions) else None
            last, negative = previous if previous is not None else (None, False)
            contexts.append(TeacherContext(observation, actions, spoiler, last, negative))
        return list(self.teacher.reflect(contexts))

    def step(self) -> list[Turn]:
        """Advance every lane by one turn; return the turns taken (one per lane)."""
        self._reset_finished()
        for _, info, _, _ in self._lanes:
            require_oracle(info)  # before asking a teacher: its reflections lead to the oracle's action
        turns, actions = [], []
        reflections = self._reflections()
        for lane, (observation, info, episode_seed, step) in enumerate(self._lanes):
            action, negative = teacher_action(info, self.rng, self.mistake_prob)
            shown, order, oracle = _shown(info, self.rng if self.shuffle_actions else None, teacher_label(info))
            turn = Turn(observation, shown, reflections[lane], oracle, negative, order, episode_seed, step)
            turn.taken = order.index(action)
            turns.append(turn)
            actions.append(action)
            self._previous[lane] = (str(info["actions"][action]), negative)
        for lane, (observation, _, terminated, truncated, info) in enumerate(step_all(self.envs, actions)):
            episode_seed, step = self._lanes[lane][2:]
            self._lanes[lane] = None if terminated or truncated else (observation, info, episode_seed, step + 1)
        return turns

    def __iter__(self) -> Iterator[Turn]:
        while True:
            yield from self.step()

    def episodes(self, count: int) -> list[list[Turn]]:
        """Play until ``count`` episodes have ended and return their turns (fixed SFT, validation and export sets).

        Lanes that are mid-episode when the ``count``-th episode ends are thrown away. A ``teacher`` object (an LLM)
        is therefore not asked during play: the episodes are played first, and it then reflects on the kept turns
        only, with the same context it would have had during play, so no request is paid for a discarded turn.
        """
        if self.teacher is not None and self.with_reflection:
            teacher, self.teacher, self.with_reflection = self.teacher, None, False
            try:
                played = self.episodes(count)
            finally:
                self.teacher, self.with_reflection = teacher, True
            contexts = [turn_context(t, e[i - 1] if i else None) for e in played for i, t in enumerate(e)]
            for turn, reflection in zip((t for e in played for t in e), teacher.reflect(contexts), strict=True):
                turn.reflection = reflection
            return played
        finished: list[list[Turn]] = []
        current: list[list[Turn]] = [[] for _ in self.envs]
        while len(finished) < count:
            for lane, turn in enumerate(self.step()):
                current[lane].append(turn)
                if self._lanes[lane] is None:
                    finished.append(current[lane])
                    current[lane] = []
        return finished[:count]


def play_episodes(
    envs: Sequence[gym.Env],
    seeds: Sequence[int],
    act: Callable[[list[Turn]], list[int] | tuple[list[int], list[dict[str, Any]]]],
    stage: str | None = None,
    teacher_reflections: bool = False,
) -> list[EpisodeResult]:
    """Play one episode per seed with a model, all lanes in lock-step, and return the results in seed order.

    Args:
        envs: Environments to play on (lanes); seeds are dealt to free lanes as episodes end.
        seeds: One episode per seed (a repeated seed is played again: the episodes differ where the actions are
            sampled).
        act: Receives the turns of the lanes still playing and returns a shown-action index for each, or those and a
            dict per turn of what the choice was made on (kept as ``extra`` in the transcript; a ``reflection`` in it
            is the one the policy read). ``None`` instead of an index is an **invalid action** (e.g. an LLM's answer
            that names no label): the environment gets the first index of its action space outside the admissible
            list and penalises it as it does any invalid index; where every index is admissible (DangerousTaxi) the
            episode ends there as a failure, with no reward and no step of the environment.
        stage: Curriculum stage passed to ``reset``.
        teacher_reflections: Put the teacher's reflection into each turn (for a policy that reads the teacher).

    Example:
        >>> envs = [gym.make("ReflectRL/DangerousTaxi-v0") for _ in range(8)]
        >>> results = play_episodes(envs, seeds=range(100), act=lambda turns: [t.oracle for t in turns], stage="pickup")
        >>> sum(r.success for r in results) / len(results)
        1.0
    """
    pending = list(enumerate(seeds))[::-1]  # (episode index, seed): a seed may be played more than once
    results: dict[int, EpisodeResult] = {}
    lanes: list[dict[str, Any] | None] = [None] * len(envs)
    options = {"stage": stage} if stage is not None else None

    def start(free: list[int]) -> None:
        dealt = [pending.pop() for _ in free[: len(pending)]]
        for lane in free[len(dealt) :]:
            lanes[lane] = None
        started = reset_all([envs[lane] for lane in free[: len(dealt)]], [seed for _, seed in dealt], options)
        for lane, (index, seed), (observation, info) in zip(free, dealt, started, strict=False):
            lanes[lane] = {"index": index, "seed": seed, "observation": observation, "info": info, "return": 0.0,
                           "step": 0, "log": []}  # fmt: skip

    start(list(range(len(envs))))
    while any(lane is not None for lane in lanes):
        active = [i for i, lane in enumerate(lanes) if lane is not None]
        turns = []
        for i in active:
            lane = lanes[i]
            shown, order, oracle = _shown(lane["info"], None)
            reflection = envs[i].unwrapped.teacher_reflection() if teacher_reflections else None
            turns.append(Turn(lane["observation"], shown, reflection, oracle, False, order, lane["seed"], lane["step"]))
        decided = act(turns)
        choices, extras = decided if isinstance(decided, tuple) else (decided, [{} for _ in turns])
        indices = [_env_index(envs[i], t, c) for i, t, c in zip(active, turns, choices, strict=True)]
        stepping = [k for k, index in enumerate(indices) if index is not None]
        outcomes = step_all([envs[active[k]] for k in stepping], [indices[k] for k in stepping])
        stepped = dict(zip(stepping, outcomes, strict=True))
        finished = []
        for k, (i, turn, choice, extra) in enumerate(zip(active, turns, choices, extras, strict=True)):
            lane = lanes[i]
            if k in stepped:
                observation, reward, terminated, truncated, info = stepped[k]
            else:  # an invalid answer where the environment has no invalid index: the episode ends, failed
                observation, reward, terminated, truncated = lane["observation"], 0.0, False, True
                info = {**lane["info"], "success": False, "invalid_action": True}
            lane["return"] += float(reward)
            lane["step"] += 1
            valid = choice is not None and 0 <= choice < len(turn.actions)
            reflection = extra.get("reflection", turn.reflection)
            entry = {
                "observation": turn.observation,
                "reflection": reflection,
                "action": turn.actions[choice] if valid else None,
                "choice": int(choice) if valid else None,
                "num_actions": len(turn.actions),
                "oracle": turn.oracle,
                "recommended": recommended_action(reflection, turn.actions) if reflection else None,
                "reward": float(reward),
            }
            if not valid:
                entry["invalid_action"] = True
            lane["log"].append({**entry, "extra": extra} if extra else entry)
            lane["observation"], lane["info"] = observation, info
            if terminated or truncated:
                final = {k: v for k, v in info.items() if k != "actions"}
                results[lane["index"]] = EpisodeResult(
                    lane["seed"], bool(info.get("success")), lane["return"], lane["step"], lane["log"], final
                )
                finished.append(i)
        start(finished)
    return [results[index] for index in range(len(seeds))]


def _env_index(env: gym.Env, turn: Turn, choice: int | None) -> int | None:
    """The environment's action index of a shown choice (an invalid one: the first inadmissible index, or ``None``)."""
    if choice is not None and 0 <= choice < len(turn.actions):
        return turn.order[choice]
    first_invalid = len(turn.actions)
    return first_invalid if first_invalid < int(env.action_space.n) else None
