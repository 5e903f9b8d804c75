"""The environment contract shared by every Reflect-RL environment.

Every environment is a :class:`gymnasium.Env` whose observation is one ``str`` and whose action is an index into
``info["actions"]``, the list of admissible action texts for the current turn. :class:`TextEnv` holds what all of
them share: the text observation space, action validation, curriculum-stage lookup and the teacher hook.
"""

from __future__ import annotations

import numbers
import string
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

#: Characters an observation may contain. Anything else is replaced by ``?`` (see :func:`to_observation_text`).
OBSERVATION_CHARSET = frozenset(string.printable)


def to_observation_text(text: str) -> str:
    r"""Make ``text`` fit :data:`OBSERVATION_CHARSET`: tabs become spaces, other characters outside it become ``?``.

    Example:
        >>> to_observation_text("Taxi\tat (4, 0) → here")
        'Taxi    at (4, 0) ? here'
    """
    text = text.replace("\t", "    ").replace("\r\n", "\n").replace("\r", "\n")
    if all(ch in OBSERVATION_CHARSET for ch in text):
        return text
    return "".join(ch if ch in OBSERVATION_CHARSET else "?" for ch in text)


def validate_action(action: Any, max_actions: int) -> int:
    """Return ``action`` as a Python ``int`` if it is an integer in ``[0, max_actions)``.

    Accepts Python and NumPy integers and 0-d / one-element integer arrays (what vectorised envs pass).

    Raises:
        ValueError: for anything else, with a message that says what an action must be.

    Example:
        >>> validate_action(np.int64(3), max_actions=6), validate_action(np.array([2]), max_actions=6)
        (3, 2)
        >>> validate_action(6, max_actions=6)  # raises ValueError: outside the action space Discrete(6)
    """
    value = action
    if isinstance(value, np.ndarray) and value.size == 1 and np.issubdtype(value.dtype, np.integer):
        value = value.reshape(()).item()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"An action must be an integer index into info['actions'] in [0, {max_actions}), "
            f"got {action!r} of type {type(action).__name__}."
        )
    value = int(value)
    if not 0 <= value < max_actions:
        raise ValueError(
            f"Action {value} is outside the action space Discrete({max_actions}); an action must be an index into "
            f"info['actions'] in [0, {max_actions})."
        )
    return value


class TextEnv(gym.Env[str, np.int64]):
    """Base class for text environments that follow the Reflect-RL contract.

    Subclasses set :attr:`stages` (the curriculum stage names they know; each chooses its own default stage), call
    ``super().__init__(max_actions=...)`` and implement ``reset``, ``step``, :meth:`teacher_reflection`,
    :attr:`current_actions` and ``_render_text``.

    Contract (see docs/design.md):
        * ``reset(seed=..., options={"stage": ...})`` picks the curriculum stage; same seed, same episode.
        * ``info["actions"]``: admissible action texts, in the order shown; the action is an index into it.
        * ``info["oracle_action"]``: an optimal index where the environment knows one.
        * ``info["mistake_actions"]`` (optional): the wrong indices the teacher may take on purpose (negative
          examples); an environment leaves out those that would end the episode before a corrective reflection.
        * ``info["success"]``: whether the task was solved (``True`` only at the end of a solved episode).
        * ``info["invalid_action"]``: ``True`` when the index was outside ``info["actions"]``.
        * A value that is not an integer in the action space raises ``ValueError``.

    Example:
        >>> env = gym.make("ReflectRL/DangerousTaxi-v0")  # DangerousTaxiEnv is a TextEnv
        >>> observation, info = env.reset(seed=0, options={"stage": "pickup"})
        >>> env.unwrapped.stages, env.unwrapped.current_actions == info["actions"]
        (('pickup', 'dropoff', 'full'), True)
        >>> env.unwrapped.teacher_reflection()  # '... so the best action now is to go north.'
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"], "render_fps": 4}
    #: Curriculum stages this environment knows, easiest first.
    stages: ClassVar[tuple[str, ...]] = ()

    def __init__(self, max_actions: int, max_observation_chars: int = 4096, render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}."
            )
        self.render_mode = render_mode
        self.max_actions = int(max_actions)
        self.action_space = gym.spaces.Discrete(self.max_actions)
        self.observation_space = gym.spaces.Text(
            max_length=max_observation_chars, min_length=0, charset=OBSERVATION_CHARSET
        )

    # -- helpers for subclasses -------------------------------------------------------------------------------------
    def _validate_action(self, action: Any) -> int:
        return validate_action(action, self.max_actions)

    def _stage_from_options(self, options: dict[str, Any] | None, default: str) -> str:
        """Read ``options["stage"]`` and check that this environment knows it."""
        stage = (options or {}).get("stage", default)
        if stage is None:
            stage = default
        stage = str(stage)
        if stage not in self.stages:
            raise ValueError(
                f"Unknown curriculum stage {stage!r} for {type(self).__name__}; known stages: {', '.join(self.stages)}."
            )
        return stage

    def _check_observation(self, text: str) -> str:
        text = to_observation_text(text)
        limit = self.observation_space.max_length
        if len(text) > limit:  # keep the end: the current state is at the bottom of every observation
            text = text[len(text) - limit :]
        return text

    # -- the teacher -----------------------------------------------------------------------------------------------
    def teacher_reflection(self) -> str:
        """Return the privileged teacher's reflection on the current state.

        The reflection is deterministic given the state and the last action; after a wrong action it says what went
        wrong and how to recover.
        """
        raise NotImplementedError

    @property
    def current_actions(self) -> Sequence[str]:
        """The admissible action texts of the current turn (the same list as the last ``info["actions"]``)."""
        raise NotImplementedError

    def render(self) -> str | None:
        text = self._render_text()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def _render_text(self) -> str:
        raise NotImplementedError
