"""TextMaze: a small custom environment written the way a user would, against the Reflect-RL contract only.

It imports nothing from this project: a plain ``gymnasium.Env`` whose observation is text, whose action indexes
``info["actions"]``, with an oracle (``info["oracle_action"]``) and a rule-based teacher (``teacher_reflection()``).
That is all the three stages need.
"""

from __future__ import annotations

import string
from collections import deque
from numbers import Integral
from typing import Any

import gymnasium as gym
import numpy as np

MOVES = {"north": (-1, 0), "east": (0, 1), "south": (1, 0), "west": (0, -1)}
OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east"}
SIZES = {"small": 3, "large": 4}


class TextMazeEnv(gym.Env):
    """Find the exit of a maze of rooms, one room at a time, told only the doors of the current room.

    Each seed carves a random maze (a spanning tree of the grid: one path between any two rooms) and picks a start
    and an exit. Actions are ``go <door>`` for the open doors of the room (two to four). Reward -0.05 a move, +1 at
    the exit (success); an index past the doors shown is an invalid action that wastes the turn.

    Curriculum stages (``reset(options={"stage": ...})``): ``small`` (3x3 rooms) and ``large`` (4x4).

    Args:
        stage: The stage used when ``reset`` gets no ``options["stage"]``.
        horizon: Moves before an unfinished episode is truncated.

    Example:
        >>> env = TextMazeEnv()
        >>> observation, info = env.reset(seed=0)
        >>> observation, reward, terminated, truncated, info = env.step(info["oracle_action"])
    """

    metadata = {"render_modes": []}
    stages = tuple(SIZES)

    def __init__(self, stage: str = "large", horizon: int = 20) -> None:
        self.stage = self._check_stage(stage)
        self.horizon = horizon
        self.observation_space = gym.spaces.Text(max_length=512, charset=string.printable)
        self.action_space = gym.spaces.Discrete(4)
        self._doors: dict[tuple[int, int], list[str]] = {}
        self._room = self._exit = (0, 0)
        self._last: str | None = None
        self._last_was_wrong = False
        self._steps = 0

    # -- gymnasium --------------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.stage = self._check_stage((options or {}).get("stage", self.stage))
        size = SIZES[self.stage]
        self._doors = self._carve(size)
        rooms = [(r, c) for r in range(size) for c in range(size)]
        start, goal = self.np_random.choice(len(rooms), size=2, replace=False)
        self._room, self._exit = rooms[int(start)], rooms[int(goal)]
        self._last, self._last_was_wrong, self._steps = None, False, 0
        return self._observation(), self._info(success=False, invalid=False)

    def step(self, action: Any):
        if isinstance(action, np.ndarray) and action.size == 1:
            action = action.reshape(()).item()
        if isinstance(action, bool) or not isinstance(action, Integral):
            raise ValueError(f"An action must be an integer index into info['actions'], got {action!r}.")
        actions = self._actions()
        self._steps += 1
        invalid = not 0 <= int(action) < len(actions)
        if not invalid:
            door = actions[int(action)].removeprefix("go ")
            self._last_was_wrong = door != self._path_door()
            self._last = door
            dr, dc = MOVES[door]
            self._room = (self._room[0] + dr, self._room[1] + dc)
        success = self._room == self._exit
        truncated = not success and self._steps >= self.horizon
        reward = (1.0 if success else 0.0) - 0.05
        return self._observation(), reward, success, truncated, self._info(success=success, invalid=invalid)

    # -- the contract -------------------------------------------------------------------------------------------------
    def teacher_reflection(self) -> str:
        """The privileged teacher: where the exit is, what went wrong (after a wrong move) and the next door."""
        dr, dc = self._exit[0] - self._room[0], self._exit[1] - self._room[1]
        where = " and ".join(
            f"{abs(d)} {'room' if abs(d) == 1 else 'rooms'} {name}"
            for d, name in ((dr, "south" if dr > 0 else "north"), (dc, "east" if dc > 0 else "west"))
            if d
        )
        text = f"The exit is {where}." if where else "This is the exit."
        if self._last_was_wrong:
            text = f"Going {self._last} led away from the exit. " + text
        door = self._path_door()
        if door is None:
            return text
        straight = self._straight_door(dr, dc)
        if straight and door != straight:
            why = "leads to a dead end" if straight in self._doors[self._room] else "is closed"
            text += f" The {straight} door {why}; the path turns {door}."
        return f"{text} Next: go {door}."

    # -- helpers ------------------------------------------------------------------------------------------------------
    def _check_stage(self, stage: Any) -> str:
        if stage not in SIZES:
            raise ValueError(f"Unknown stage {stage!r} for TextMaze; known stages: {', '.join(SIZES)}.")
        return str(stage)

    def _carve(self, size: int) -> dict[tuple[int, int], list[str]]:
        """A random spanning tree of the grid by depth-first search: the open doors of each room."""
        doors: dict[tuple[int, int], list[str]] = {(r, c): [] for r in range(size) for c in range(size)}
        stack, seen = [(0, 0)], {(0, 0)}
        while stack:
            room = stack[-1]
            options = [
                (name, (room[0] + dr, room[1] + dc))
                for name, (dr, dc) in MOVES.items()
                if (room[0] + dr, room[1] + dc) in doors and (room[0] + dr, room[1] + dc) not in seen
            ]
            if not options:
                stack.pop()
                continue
            name, nxt = options[int(self.np_random.integers(len(options)))]
            doors[room].append(name)
            doors[nxt].append(OPPOSITE[name])
            seen.add(nxt)
            stack.append(nxt)
        return {room: [d for d in MOVES if d in names] for room, names in doors.items()}

    def _actions(self) -> list[str]:
        return [f"go {door}" for door in self._doors[self._room]]

    def _path_door(self) -> str | None:
        """The first door on the (unique) path to the exit, by breadth-first search."""
        if self._room == self._exit:
            return None
        first: dict[tuple[int, int], str | None] = {self._room: None}
        queue = deque([self._room])
        while queue:
            room = queue.popleft()
            for door in self._doors[room]:
                dr, dc = MOVES[door]
                nxt = (room[0] + dr, room[1] + dc)
                if nxt not in first:
                    first[nxt] = first[room] or door
                    if nxt == self._exit:
                        return first[nxt]
                    queue.append(nxt)
        raise RuntimeError("the maze is not connected")

    @staticmethod
    def _straight_door(dr: int, dc: int) -> str | None:
        if abs(dr) >= abs(dc) and dr:
            return "south" if dr > 0 else "north"
        return ("east" if dc > 0 else "west") if dc else None

    def _observation(self) -> str:
        doors = ", ".join(self._doors[self._room])
        text = f"Room {self._room[0]},{self._room[1]}. Exit at room {self._exit[0]},{self._exit[1]}. Doors: {doors}."
        return text if self._last is None else f"{text}\nLast move: {self._last}."

    def _info(self, success: bool, invalid: bool) -> dict[str, Any]:
        actions = self._actions()
        door = self._path_door()
        oracle = actions.index(f"go {door}") if door else 0
        return {
            "actions": actions,
            "oracle_action": oracle,
            "mistake_actions": [i for i in range(len(actions)) if i != oracle] if door else [],
            "success": success,
            "invalid_action": invalid,
        }
