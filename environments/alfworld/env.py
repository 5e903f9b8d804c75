"""The ALFWorld environment (``ReflectRL/ALFWorld-v1``): ALFWorld's real text engine behind the Reflect-RL contract."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref
import zlib
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from environments.alfworld.commands import parse_command
from environments.alfworld.dataset import Game, find_games, generated_games
from environments.alfworld.dependencies import require_alfworld
from environments.alfworld.engine import EngineProcess
from environments.alfworld.memory import Memory
from environments.alfworld.scenes import write_scene
from environments.alfworld.search import Goal, Move, choose, mistake_actions
from environments.alfworld.task_types import DEFAULT_STAGE, STAGES, TASK_TYPES, task_types_of_stage
from environments.alfworld.teacher import TeacherState, reflect
from environments.base import TextEnv

_RESET_OPTIONS = frozenset({"stage", "game"})
_TASK_RE = re.compile(r"Your task is to:\s*(.*?)\s*$", re.DOTALL)
_BANNER = "-= Welcome to TextWorld, ALFRED! =-"
_INVALID_FEEDBACK = "Nothing happens: that is not one of the listed actions."


class ALFWorldEnv(TextEnv):
    """ALFWorld's household tasks in TextWorld's PDDL engine, as a Reflect-RL text environment.

    Each episode plays one ALFWorld game: a room of receptacles and objects and a task such as "heat some tomato and
    put it in countertop". The engine is ALFWorld's own (``alfworld`` wheel: TextWorld's ``PddlEnv`` with ALFWorld's
    wrappers; the expert is its fast-downward planner), hosted in a worker process of this environment
    (:class:`~environments.alfworld.engine.EngineProcess`), started at construction and stopped by :meth:`close`.

    Games come from one of two places:

    * generated scenes (default): ``num_scenes`` seeded rooms per task type (pool seed ``scene_seed``; a validation
      environment takes another ``scene_seed``), written to ``scene_dir`` in the data set's format on first use;
    * the ALFWorld data set: ``data_path`` names its ``json_2.1.1`` tree or a split of it (``$ALFWORLD_DATA`` is
      expanded, e.g. ``data_path="$ALFWORLD_DATA/json_2.1.1/train"``); ``object_types`` and ``receptacle_types``
      filter the games (the paper's tomato / microwave pick-and-place: ``object_types=["Tomato"],
      receptacle_types=["Microwave"]``, stage ``pick_and_place_simple``).

    The observation (one ``str``) is the task line, the agent's memory (what it holds, the receptacles already
    checked with what was seen in them, the most recent first, and those not yet checked; at most ``memory_size``
    of each, see :class:`~environments.alfworld.memory.Memory`), then the last ``history_length`` commands with the
    engine's answers (``> go to fridge 1`` / ``You arrive at fridge 1. ...``), then the current answer (at the
    start: the room). The actions are the engine's admissible commands in its (sorted) order, without those whose
    verb is in ``drop_verbs``; when there are more than ``max_actions``, the first ones are shown and the teacher's
    and the planner's next commands are kept among them.

    Rewards: ``success_reward`` when the task is done (the episode terminates, ``info["success"]``), else
    ``step_reward``; an index inside ``Discrete(max_actions)`` but outside ``info["actions"]`` gives
    ``invalid_action_reward``, changes nothing and sets ``info["invalid_action"]``. Episodes are truncated after
    ``horizon`` turns.

    The teacher searches like a person who does not know the room (:mod:`environments.alfworld.search`): until the
    task's object has been seen it checks receptacles in a fixed order, then it follows the planner. Its command is
    ``info["teacher_action"]``, the SFT label and the behaviour of the SFT episodes; its reflection
    (:meth:`teacher_reflection`) states only what the episode has shown and ends with ``Next: <command>.``

    ``info`` every turn: ``actions``, ``teacher_action`` (index of the searching teacher's command),
    ``oracle_action`` (index of the planner's next command, which knows the room; the teacher's when the planner's
    is not among the shown commands),
    ``mistake_actions`` (commands the agent's memory already shows to be wrong; no command ends an episode, and none
    is offered on the last turn before the horizon, so a corrective reflection always follows), ``success``,
    ``invalid_action``, ``stage``, ``task_type``, ``task`` (the task sentence), ``game`` (the game's id), ``step``,
    ``expert_plan`` (the planner's whole remaining plan; privileged, for measuring).

    Curriculum stages (``reset(options={"stage": ...})``): one per ALFWorld task type (``pick_and_place_simple``,
    ``look_at_obj_in_light``, ``pick_clean_then_place_in_recep``, ``pick_heat_then_place_in_recep``,
    ``pick_cool_then_place_in_recep``, ``pick_two_obj_and_place``) and ``all``. ``options={"game": id}`` plays the
    game with that id (see :meth:`game_ids`).

    Same seed, same episode: the game is drawn with ``self.np_random``, scenes are seeded, the engine is
    deterministic. Playing the same game again only resets the engine (a new game is loaded once: about 0.1 s more).

    Besides ``reset``/``step`` there are non-blocking :meth:`reset_async`/:meth:`step_async` with
    :meth:`reset_wait`/:meth:`step_wait`, so that a lock-step rollout can keep many engines busy at once (call them
    on the unwrapped environment).

    Args:
        data_path: The ALFWorld data tree (see above); ``None`` plays generated scenes.
        scene_dir: Where generated scenes (and game files missing from a data tree) are written; default: a new
            temporary folder, removed by :meth:`close`.
        stage: Stage used when ``reset`` gets none.
        object_types: Keep games whose object is one of these ALFRED classes (e.g. ``["Tomato"]``).
        receptacle_types: Keep games whose goal receptacle is one of these classes (e.g. ``["Microwave"]``).
        max_games: Data set only: keep the first ``max_games`` games (by id).
        num_scenes: Generated scenes per task type.
        scene_seed: Seed of the generated pool (held-out scenes: another seed).
        num_receptacles: Receptacles per generated room (4 to 24; a reset takes longer with more).
        num_distractors: Objects per generated room besides the task's.
        max_actions: Size of the action space ``Discrete(max_actions)``.
        horizon: Turns per episode before truncation.
        history_length: Earlier commands (with their answers) shown in the observation.
        memory_size: Checked receptacles (and as many unchecked ones) the observation's memory names.
        success_reward: Reward for finishing the task.
        step_reward: Reward of every other valid turn.
        invalid_action_reward: Reward of an index outside the action list.
        drop_verbs: Verbs of admissible commands never shown (by default ``help``, ``look``, ``inventory`` and
            ``examine``, which change nothing: a shorter list is easier to match a recommendation against).
        start_method: How the engine process starts: ``"spawn"`` or ``"forkserver"``.
        engine_timeout: Seconds to wait for the engine's reply before stopping it.
        max_observation_chars: Length bound of the observation space (longer texts keep their end).
        render_mode: ``None``, ``"ansi"`` or ``"human"``.

    Raises:
        ModuleNotFoundError: when the ``alfworld`` extra is not installed (``pip install -e '.[alfworld]'``).
        ValueError: for bad arguments, an unknown stage or a stage without games.
        GameDataError: for a data path that holds no playable game (a subclass of ``ValueError``).

    Example:
        >>> import gymnasium as gym, environments
        >>> env = gym.make("ReflectRL/ALFWorld-v1", num_scenes=4)
        >>> observation, info = env.reset(seed=0, options={"stage": "pick_heat_then_place_in_recep"})
        >>> env.unwrapped.teacher_reflection().endswith(f"Next: {info['actions'][info['teacher_action']]}.")
        True
        >>> env.close()

    """

    stages = STAGES

    def __init__(
        self,
        data_path: str | os.PathLike[str] | None = None,
        scene_dir: str | os.PathLike[str] | None = None,
        stage: str = DEFAULT_STAGE,
        object_types: Sequence[str] | None = None,
        receptacle_types: Sequence[str] | None = None,
        max_games: int | None = None,
        num_scenes: int = 16,
        scene_seed: int = 0,
        num_receptacles: int = 6,
        num_distractors: int = 3,
        max_actions: int = 40,
        horizon: int = 20,
        history_length: int = 0,
        memory_size: int = 6,
        success_reward: float = 1.0,
        step_reward: float = 0.0,
        invalid_action_reward: float = -0.1,
        drop_verbs: Sequence[str] = ("help", "look", "inventory", "examine"),
        start_method: str = "spawn",
        engine_timeout: float = 600.0,
        max_observation_chars: int = 4096,
        render_mode: str | None = None,
    ) -> None:
        require_alfworld()
        if int(max_actions) < 2:
            raise ValueError(f"max_actions must be at least 2, got {max_actions}.")
        if int(horizon) < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}.")
        if int(history_length) < 0:
            raise ValueError(f"history_length must be at least 0, got {history_length}.")
        if int(memory_size) < 1:
            raise ValueError(f"memory_size must be at least 1, got {memory_size}.")
        if int(num_scenes) < 1:
            raise ValueError(f"num_scenes must be at least 1, got {num_scenes}.")
        super().__init__(int(max_actions), max_observation_chars=max_observation_chars, render_mode=render_mode)
        self.default_stage = self._stage_from_options({"stage": stage}, DEFAULT_STAGE)
        self.horizon = int(horizon)
        self.history_length = int(history_length)
        self.success_reward = float(success_reward)
        self.step_reward = float(step_reward)
        self.invalid_action_reward = float(invalid_action_reward)
        self.memory_size = int(memory_size)
        self.drop_verbs = frozenset(drop_verbs)

        if scene_dir is None:
            self.scene_dir = Path(tempfile.mkdtemp(prefix="reflect-rl-alfworld-"))
            self._remove_scene_dir = weakref.finalize(self, shutil.rmtree, str(self.scene_dir), ignore_errors=True)
        else:
            self.scene_dir = Path(os.path.expanduser(os.fspath(scene_dir))).resolve()
            self.scene_dir.mkdir(parents=True, exist_ok=True)
            self._remove_scene_dir = None
        if data_path is None:
            games = generated_games(
                self.scene_dir,
                num_scenes=int(num_scenes),
                base_seed=int(scene_seed),
                num_receptacles=num_receptacles,
                num_distractors=num_distractors,
                object_classes=object_types,
                receptacle_classes=receptacle_types,
            )
        else:
            games = find_games(
                data_path, TASK_TYPES, object_types, receptacle_types, build_dir=self.scene_dir, max_games=max_games
            )
        self.games: list[Game] = games
        self._by_id = {game.game_id: game for game in games}
        self._pools = {name: [g for g in games if g.task_type in task_types_of_stage(name)] for name in STAGES}
        self._pool(self.default_stage)  # fail early when the default stage has no games
        self._engine = EngineProcess(str(self.scene_dir), start_method=start_method, timeout=engine_timeout)

        self._game: Game | None = None
        self._stage = self.default_stage
        self._task = ""
        self._history: deque[tuple[str | None, str]] = deque(maxlen=self.history_length + 1)
        self._plan: tuple[str, ...] = ()
        self._actions: list[str] = []
        self._won = False
        self._done = False
        self._steps = 0
        self._last_command: str | None = None
        self._last_invalid = False
        self._memory = Memory()
        self._goal: Goal | None = None
        self._move: Move | None = None
        self._mistakes: tuple[str, ...] = ()
        self._last_mistake = False
        self._pending: tuple[Any, ...] | None = None
        self._observation = ""

    # -- games ------------------------------------------------------------------------------------------------------
    def _pool(self, stage: str) -> list[Game]:
        pool = self._pools[stage]
        if not pool:
            have = sorted({game.task_type for game in self.games})
            raise ValueError(
                f"ALFWorld stage {stage!r} has no games with these filters; the games here are of task types {have}."
            )
        return pool

    def game_ids(self, stage: str | None = None) -> list[str]:
        """The ids of the games a stage plays (default: every game), for ``reset(options={"game": id})``.

        Raises:
            ValueError: for an unknown stage.
        """
        if stage is None:
            return [game.game_id for game in self.games]
        return [game.game_id for game in self._pools[self._stage_from_options({"stage": stage}, self.default_stage)]]

    @property
    def game(self) -> Game | None:
        """The game of the current episode (``None`` before the first reset)."""
        return self._game

    @property
    def current_actions(self) -> list[str]:
        """The admissible action texts of the current turn."""
        return list(self._actions)

    @property
    def engine_pid(self) -> int | None:
        """The process id of this environment's engine worker."""
        return self._engine.pid

    # -- gymnasium API ----------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start an episode on a game drawn from the stage (or ``options["game"]``).

        Raises:
            ValueError: for an unknown stage, game or option.
            GameDataError: when the game cannot be built or loaded.

        """
        self.reset_async(seed=seed, options=options)
        return self.reset_wait()

    def reset_async(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        """Pick the game and send the reset to the engine without waiting; :meth:`reset_wait` returns the result."""
        if self._pending is not None:
            raise RuntimeError("A request is pending: call reset_wait() or step_wait() first.")
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - _RESET_OPTIONS
        if unknown:
            raise ValueError(f"Unknown reset option(s) {sorted(unknown)}; ALFWorld knows {sorted(_RESET_OPTIONS)}.")
        stage = self._stage_from_options(options, self.default_stage)
        if options.get("game") is not None:
            game = self._by_id.get(str(options["game"]))
            if game is None:
                raise ValueError(f"Unknown game {options['game']!r}; see game_ids() for the {len(self.games)} games.")
        else:
            pool = self._pool(stage)
            game = pool[int(self.np_random.integers(len(pool)))]
        build = None
        if not os.path.isfile(game.game_file):
            if game.scene is not None:
                write_scene(game.scene, self.scene_dir)
            # the seed of the task sentence's template: the scene's, or one derived from the game's id
            text_seed = game.scene.seed if game.scene is not None else zlib.crc32(game.game_id.encode())
            build = {"trial_dir": game.trial_dir, "seed": text_seed}
        self._engine.submit("reset", game.game_file, build)
        self._pending = ("reset", game, stage)

    def reset_wait(self) -> tuple[str, dict[str, Any]]:
        """Wait for the engine's answer to :meth:`reset_async` and return ``(observation, info)``."""
        if self._pending is None or self._pending[0] != "reset":
            raise RuntimeError("reset_wait() needs a reset_async() first.")
        _, game, stage = self._pending
        self._pending = None
        payload = self._engine.result()
        feedback = payload["feedback"]
        match = _TASK_RE.search(feedback)
        self._task = match.group(1).rstrip(".") if match else ""
        room = (feedback[: match.start()] if match else feedback).replace(_BANNER, "").strip()
        self._game, self._stage = game, stage
        self._history.clear()
        self._history.append((None, room))
        self._memory = Memory.from_room(room)
        self._goal = Goal(game.task_type, game.object_class, game.receptacle_class)
        self._steps = 0
        self._done = False
        self._last_command, self._last_invalid, self._last_mistake = None, False, False
        self._update(payload)
        return self._observation, self._info()

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Play one admissible command (an index into ``info["actions"]``).

        Raises:
            ValueError: if ``action`` is not an integer in the action space.
            RuntimeError: before the first reset or after the episode has ended.

        """
        self.step_async(action)
        return self.step_wait()

    def step_async(self, action: Any) -> None:
        """Send one command to the engine without waiting; :meth:`step_wait` returns the result."""
        index = self._validate_action(action)
        if self._pending is not None:
            raise RuntimeError("A request is pending: call reset_wait() or step_wait() first.")
        if self._game is None:
            raise RuntimeError("ALFWorldEnv.step() called before reset().")
        if self._done:
            raise RuntimeError("The episode is over; call reset() to start a new one.")
        if index >= len(self._actions):
            self._pending = ("invalid", index)
            return
        command = self._actions[index]
        self._engine.submit("step", command)
        self._pending = ("step", command)

    def step_wait(self) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Wait for the engine's answer to :meth:`step_async` and return what ``step`` returns."""
        if self._pending is None or self._pending[0] not in ("step", "invalid"):
            raise RuntimeError("step_wait() needs a step_async() first.")
        kind, argument = self._pending
        self._pending = None
        payload = self._engine.result() if kind == "step" else None
        self._steps += 1
        self._last_mistake = kind == "step" and argument in self._mistakes
        if payload is None:
            self._last_command, self._last_invalid = None, True
            self._history.append((f"(invalid action {argument})", _INVALID_FEEDBACK))
            reward = self.invalid_action_reward
            self._observation = self._check_observation(self._format_observation())
        else:
            self._last_command, self._last_invalid = argument, False
            feedback = payload["feedback"].strip()
            self._memory.observe(feedback)
            self._history.append((argument, feedback))
            self._update(payload)
            reward = self.step_reward + (self.success_reward if self._won else 0.0)
        terminated = self._won
        truncated = not terminated and self._steps >= self.horizon
        self._done = terminated or truncated
        return self._observation, float(reward), terminated, truncated, self._info()

    def close(self) -> None:
        """Stop the engine process and remove the temporary scene folder (if this environment made it)."""
        if self._pending is not None and self._pending[0] != "invalid":
            self._pending = None
        self._engine.close()
        if self._remove_scene_dir is not None:
            self._remove_scene_dir()
        super().close()

    # -- the Reflect-RL contract ------------------------------------------------------------------------------------
    def teacher_reflection(self) -> str:
        """Return the teacher's reflection on the current turn (ending ``Next: <command>.``).

        It states only what the episode has shown. After a deliberate mistake (a command of the previous turn's
        ``mistake_actions``) or an invalid index it says what went wrong and how to recover; see
        :mod:`environments.alfworld.teacher`.

        Raises:
            RuntimeError: before the first reset.
        """
        if self._game is None:
            raise RuntimeError("teacher_reflection() needs an episode: call reset() first.")
        assert self._goal is not None
        return reflect(
            TeacherState(
                task=self._task,
                goal=self._goal,
                memory=self._memory,
                move=self._move,
                last_command=self._last_command,
                last_invalid=self._last_invalid,
                last_mistake=self._last_mistake,
                won=self._won,
                step=self._steps,
            )
        )

    # -- internals --------------------------------------------------------------------------------------------------
    def _update(self, payload: dict[str, Any]) -> None:
        """Take the engine's state: plan, win, the shown actions and the observation."""
        self._plan = tuple(payload["expert_plan"])
        self._won = bool(payload["won"])
        commands = [c for c in payload["admissible_commands"] if parse_command(c).verb not in self.drop_verbs]
        assert self._goal is not None
        self._move = None if self._won or not self._plan else choose(self._goal, self._memory, self._plan, commands)
        if len(commands) > self.max_actions:
            wanted = [c for c in (self._move.command if self._move else None, *self._plan[:1]) if c in commands]
            keep = [c for c in commands[: self.max_actions] if c not in wanted]
            keep = set(keep[: self.max_actions - len(wanted)]) | set(wanted)
            commands = [c for c in commands if c in keep]
        self._actions = commands
        last_turn = self._steps + 1 >= self.horizon
        mistakes = (
            [] if self._won or last_turn else mistake_actions(self._goal, self._memory, commands, self._teacher())
        )
        self._mistakes = tuple(commands[i] for i in mistakes)
        self._observation = self._check_observation(self._format_observation())

    def _teacher(self) -> str | None:
        return self._move.command if self._move is not None else None

    def _format_observation(self) -> str:
        lines = [f"Your task is to: {self._task}.", *self._memory.lines(self.memory_size)]
        for command, feedback in self._history:
            if command is not None:
                lines.append(f"> {command}")
            lines.append(feedback)
        return "\n".join(lines)

    def _teacher_index(self) -> int:
        if self._move is not None and self._move.command in self._actions:
            return self._actions.index(self._move.command)
        if self._won and self._last_command in self._actions:
            return self._actions.index(self._last_command)
        return 0

    def _planner_index(self, teacher: int) -> int:
        if self._plan and self._plan[0] in self._actions:
            return self._actions.index(self._plan[0])
        return teacher

    def _info(self) -> dict[str, Any]:
        assert self._game is not None
        teacher = self._teacher_index()
        return {
            "actions": list(self._actions),
            "teacher_action": teacher,
            "oracle_action": self._planner_index(teacher),
            "mistake_actions": [self._actions.index(c) for c in self._mistakes],
            "success": self._won,
            "invalid_action": self._last_invalid,
            "stage": self._stage,
            "task_type": self._game.task_type,
            "task": self._task,
            "game": self._game.game_id,
            "step": self._steps,
            "expert_plan": list(self._plan),
        }

    def _render_text(self) -> str:
        if self._game is None:
            raise RuntimeError("Call reset() before render().")
        actions = "\n".join(f"  {index}: {text}" for index, text in enumerate(self._actions))
        return f"{self._observation}\nActions:\n{actions}"
