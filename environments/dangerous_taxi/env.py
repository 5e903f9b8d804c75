"""DangerousTaxi: gymnasium's Taxi-v4 as a text environment where every no-op action is dangerous and ends the ride."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gymnasium.envs.toy_text.utils import categorical_sample

from environments.base import TextEnv
from environments.dangerous_taxi.dynamics import (
    ACTION_TEXTS,
    DROPOFF,
    IN_TAXI,
    NUM_ACTIONS,
    PICKUP,
    decode,
    tables,
    taxi,
)
from environments.dangerous_taxi.oracle import (
    STAGES,
    check_stage,
    check_state,
    is_goal,
    optimal_actions,
    oracle_path,
    oracle_table,
)
from environments.dangerous_taxi.render import check_observation_format, observation_table
from environments.dangerous_taxi.teacher import teacher_reflection

#: Reward of a dangerous action (Taxi's illegal-action penalty, scaled like every reward by 1/20).
DANGER_REWARD = -10 / 20
#: Reward of the pickup that ends a ``pickup``-stage episode.
PICKUP_REWARD = 20 / 20
#: Taxi's rewards are divided by this.
REWARD_SCALE = 20.0


class DangerousTaxiEnv(TextEnv):
    """The Reflect-RL DangerousTaxi environment, built on gymnasium's deterministic ``Taxi-v4``.

    The world, its map and its transitions are Taxi's. The danger rule (the paper's): an action that leaves the Taxi
    state unchanged (driving into a wall or the border, an illegal pickup or drop-off) ends the episode with reward
    -10/20, ``info["dangerous"] = True`` and no success. Every other reward is Taxi's divided by 20 (-1/20 a step,
    +20/20 for the delivery). The six actions are Taxi's, in Taxi's order, and all six are admissible every turn.

    Curriculum stages (``reset(options={"stage": ...})``):
        * ``pickup``: the episode ends with success (+20/20) when the passenger gets in.
        * ``dropoff``: the passenger is already in the taxi, which stands at the passenger's stop (a Taxi start state
          driven to the pickup by the oracle, so the first observation says ``Last action: pick up the passenger.``,
          as it would in the middle of a full ride); deliver them.
        * ``full``: Taxi's whole task.

    ``info`` at every turn: ``actions`` (the six action texts), ``oracle_action`` (an optimal action; after a solved
    episode the action that solved it), ``mistake_actions`` (the wrong actions that are not dangerous: the teacher's
    deliberate mistakes come from these, so that a corrective reflection can follow), ``success``,
    ``invalid_action`` (always ``False``: every index of the action space is admissible), ``dangerous``, ``stage``
    and ``state`` (Taxi's ``int`` state).

    Args:
        stage: The stage used when ``reset`` gets no ``options["stage"]``.
        horizon: Steps after which an unfinished episode is truncated.
        observation_format: ``"grid"`` (Taxi's ASCII map with T, P, D, O, X marks and a legend line) or ``"compact"``
            (positions in words and numbers, for tiny models). After the first step, a line ``Last action: ...``
            follows, so that a reader can tell (and a reflection can say) when the last move was a mistake.
        render_mode: ``None``, ``"ansi"`` (``render()`` returns the text) or ``"human"`` (prints it).

    Example:
        >>> env = DangerousTaxiEnv(observation_format="compact")
        >>> observation, info = env.reset(seed=0, options={"stage": "pickup"})
        >>> observation, reward, terminated, truncated, info = env.step(info["oracle_action"])

    """

    stages = STAGES

    def __init__(
        self,
        stage: str = "full",
        horizon: int = 20,
        observation_format: str = "grid",
        render_mode: str | None = None,
    ) -> None:
        super().__init__(max_actions=NUM_ACTIONS, render_mode=render_mode)
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {horizon!r}.")
        self.default_stage = check_stage(stage)
        self.horizon = horizon
        self.observation_format = check_observation_format(observation_format)
        self.taxi = taxi()
        self._tables = tables()
        self._observations = observation_table(self.observation_format)
        self._oracle = {name: oracle_table(name) for name in STAGES}
        self.stage = self.default_stage
        self._state: int | None = None
        self._previous_state: int | None = None
        self._last_action: int | None = None
        self._steps = 0
        self._done = False
        self._success = False
        self._dangerous = False

    # -- gymnasium API -----------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start an episode.

        Args:
            seed: Seeds ``self.np_random``; the same seed gives the same episode.
            options: ``{"stage": ...}`` picks the curriculum stage (default: the constructor's ``stage``);
                ``{"state": int}`` starts from that Taxi state instead of a sampled one.

        Raises:
            ValueError: for options that are not a dict, an unknown stage or option, or a state that is no valid start
                for the stage.

        """
        if options is not None and not isinstance(options, Mapping):
            raise ValueError(
                f"reset options must be a dict such as {{'stage': 'pickup'}} or {{'state': 42}}, or None; got "
                f"{type(options).__name__} {options!r:.80}."
            )
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"stage", "state"}
        if unknown:
            raise ValueError(f"Unknown reset option(s) {sorted(unknown)}; DangerousTaxi knows 'stage' and 'state'.")
        self.stage = self._stage_from_options(options, self.default_stage)
        self._previous_state = self._last_action = None
        if options.get("state") is not None:
            state = self._start_state_from_option(options["state"], self.stage)
        else:
            state = int(categorical_sample(self.taxi.initial_state_distrib, self.np_random))
            if self.stage == "dropoff":  # the oracle drives to the passenger and picks them up
                for action in oracle_path(state, "pickup"):
                    self._previous_state, self._last_action = state, action
                    state = self._tables.next_state[state][action]
        self._state = state
        self._steps = 0
        self._done = self._success = self._dangerous = False
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Take one of the six Taxi actions (an index into ``info["actions"]``).

        Raises:
            ValueError: if ``action`` is not an integer in ``Discrete(6)``.
            RuntimeError: before the first ``reset`` or after the episode has ended.

        """
        action = self._validate_action(action)
        if self._state is None:
            raise RuntimeError("Call reset() before step().")
        if self._done:
            raise RuntimeError("The episode has ended; call reset() to start a new one.")
        state = self._state
        next_state = self._tables.next_state[state][action]
        if next_state == state:  # the danger rule
            reward, terminated, success, dangerous = DANGER_REWARD, True, False, True
        elif self.stage == "pickup" and action == PICKUP:
            reward, terminated, success, dangerous = PICKUP_REWARD, True, True, False
        else:
            terminated = self._tables.terminated[state][action]
            reward, success, dangerous = self._tables.reward[state][action] / REWARD_SCALE, terminated, False
        self._steps += 1
        truncated = not terminated and self._steps >= self.horizon
        self._previous_state, self._last_action, self._state = state, action, next_state
        self._done = terminated or truncated
        self._success, self._dangerous = success, dangerous
        return self._observation(), reward, terminated, truncated, self._info()

    # -- the Reflect-RL contract -------------------------------------------------------------------------------------
    @property
    def current_actions(self) -> list[str]:
        """The six action texts (all admissible every turn), in Taxi's action order."""
        return list(ACTION_TEXTS)

    @property
    def taxi_state(self) -> int | None:
        """The current Taxi state (``None`` before the first reset)."""
        return self._state

    @property
    def elapsed_steps(self) -> int:
        """Steps taken in the current episode."""
        return self._steps

    def teacher_reflection(self) -> str:
        """Return the teacher's reflection on the current state (corrective after a wrong last action).

        See :func:`environments.dangerous_taxi.teacher.teacher_reflection`.
        """
        if self._state is None:
            raise RuntimeError("Call reset() before teacher_reflection().")
        return teacher_reflection(self._state, self.stage, self._last_action, self._previous_state)

    def _render_text(self) -> str:
        if self._state is None:
            raise RuntimeError("Call reset() before render().")
        actions = "\n".join(f"  {index}: {text}" for index, text in enumerate(ACTION_TEXTS))
        return f"{observation_table('grid')[self._state]}\nActions:\n{actions}"

    # -- helpers -------------------------------------------------------------------------------------------------------
    def _observation(self) -> str:
        """The current state's text, with the last action when there was one (a dropoff start: the pickup)."""
        text = self._observations[self._state]
        return text if self._last_action is None else f"{text}\nLast action: {ACTION_TEXTS[self._last_action]}."

    def _info(self) -> dict[str, Any]:
        state = self._state
        oracle = self._oracle[self.stage][state]
        if oracle < 0:  # the goal is reached: repeat the action that reached it
            oracle = PICKUP if self.stage == "pickup" else DROPOFF
        safe = [a for a in range(NUM_ACTIONS) if self._tables.next_state[state][a] != state]
        good = optimal_actions(state, self.stage) if not is_goal(state, self.stage) else []
        return {
            "actions": list(ACTION_TEXTS),
            "oracle_action": oracle,
            "mistake_actions": [a for a in safe if a not in good],
            "success": self._success,
            "invalid_action": False,
            "dangerous": self._dangerous,
            "stage": self.stage,
            "state": state,
        }

    @staticmethod
    def _start_state_from_option(value: Any, stage: str) -> int:
        try:
            state = check_state(value)
        except ValueError as error:
            raise ValueError(f"options['state'] is invalid: {error}") from None
        _, _, passenger, destination = decode(state)
        problem = None
        if passenger == destination:
            problem = "the passenger is already at the destination"
        elif stage == "pickup" and passenger == IN_TAXI:
            problem = "the pickup stage needs the passenger waiting outside the taxi"
        elif stage == "dropoff" and passenger != IN_TAXI:
            problem = "the dropoff stage needs the passenger in the taxi"
        if problem:
            raise ValueError(f"options['state'] = {state} is no valid start for stage {stage!r}: {problem}.")
        return state
