"""The oracle: shortest paths by breadth-first search over Taxi's transition table, for every curriculum stage.

The goal of the ``pickup`` stage is "passenger in the taxi"; of ``dropoff`` and ``full`` it is "passenger delivered"
(Taxi's state after a drop-off at the destination). Searches only use safe transitions (those that change the Taxi
state), so the oracle never takes a dangerous action. Distances and optimal actions of all 500 states are computed
once per process and cached.
"""

from __future__ import annotations

import functools
from collections import deque

from environments.dangerous_taxi.dynamics import IN_TAXI, NUM_ACTIONS, NUM_STATES, decode, tables

#: Curriculum stages, easiest first.
STAGES: tuple[str, ...] = ("pickup", "dropoff", "full")


def check_stage(stage: str) -> str:
    """Return ``stage`` if it is one of :data:`STAGES`.

    Raises:
        ValueError: for an unknown stage.

    """
    if stage not in STAGES:
        raise ValueError(f"Unknown DangerousTaxi stage {stage!r}; known stages: {', '.join(STAGES)}.")
    return stage


def check_state(state: int) -> int:
    """Return ``state`` as an ``int`` if it is a Taxi state in ``[0, 500)``.

    Raises:
        ValueError: for anything else.

    """
    if isinstance(state, bool) or not hasattr(state, "__index__"):
        raise ValueError(f"A Taxi state must be an integer in [0, {NUM_STATES}), got {state!r}.")
    value = int(state.__index__())
    if not 0 <= value < NUM_STATES:
        raise ValueError(f"A Taxi state must be an integer in [0, {NUM_STATES}), got {value}.")
    return value


def is_goal(state: int, stage: str) -> bool:
    """Whether ``state`` fulfils the goal of ``stage`` (pickup: passenger in the taxi; otherwise: delivered)."""
    _, _, passenger, destination = decode(state)
    if check_stage(stage) == "pickup":
        return passenger == IN_TAXI
    return passenger == destination


def _goal_kind(stage: str) -> str:
    return "pickup" if check_stage(stage) == "pickup" else "delivery"


@functools.cache
def _distances(kind: str) -> tuple[int, ...]:
    """Breadth-first search backwards from the goal states over safe transitions; -1 marks unreachable states."""
    stage = "pickup" if kind == "pickup" else "full"
    next_state = tables().next_state
    predecessors: list[list[int]] = [[] for _ in range(NUM_STATES)]
    for state in range(NUM_STATES):
        if is_goal(state, stage):
            continue  # the episode ends in a goal state: nothing leaves it
        for action in range(NUM_ACTIONS):
            successor = next_state[state][action]
            if successor != state:
                predecessors[successor].append(state)
    distance = [-1] * NUM_STATES
    queue = deque()
    for state in range(NUM_STATES):
        if is_goal(state, stage):
            distance[state] = 0
            queue.append(state)
    while queue:
        state = queue.popleft()
        for previous in predecessors[state]:
            if distance[previous] < 0:
                distance[previous] = distance[state] + 1
                queue.append(previous)
    return tuple(distance)


@functools.cache
def _optimal(kind: str) -> tuple[tuple[int, ...], ...]:
    distance = _distances(kind)
    next_state = tables().next_state
    optimal = []
    for state in range(NUM_STATES):
        d = distance[state]
        if d <= 0:
            optimal.append(())
            continue
        optimal.append(
            tuple(
                action
                for action in range(NUM_ACTIONS)
                if next_state[state][action] != state and distance[next_state[state][action]] == d - 1
            )
        )
    return tuple(optimal)


def distance_to_goal(state: int, stage: str) -> int:
    """Return the number of actions an optimal driver needs from ``state`` to the goal of ``stage``.

    Args:
        state: A Taxi state in ``[0, 500)``.
        stage: One of :data:`STAGES`.

    Returns:
        0 in a goal state, else the length of a shortest safe path (every state can reach its goal).

    """
    return _distances(_goal_kind(stage))[check_state(state)]


def optimal_actions(state: int, stage: str) -> list[int]:
    """Return every action (Taxi's numbering, ascending) that starts a shortest safe path to the goal of ``stage``.

    Empty in a goal state, where there is nothing left to do.
    """
    return list(_optimal(_goal_kind(stage))[check_state(state)])


def oracle_action(state: int, stage: str) -> int:
    """Return the oracle's action in ``state``: the lowest-numbered optimal action (a deterministic tie-break).

    Raises:
        ValueError: for an unknown stage, a bad state, or a state that already fulfils the stage's goal.

    """
    actions = _optimal(_goal_kind(stage))[check_state(state)]
    if not actions:
        raise ValueError(f"Taxi state {state} already fulfils the goal of stage {stage!r}; there is no oracle action.")
    return actions[0]


def oracle_path(state: int, stage: str) -> list[int]:
    """Return the oracle's actions from ``state`` until the goal of ``stage`` is reached (empty in a goal state)."""
    state = check_state(state)
    optimal = _optimal(_goal_kind(stage))
    next_state = tables().next_state
    path = []
    while optimal[state]:
        action = optimal[state][0]
        path.append(action)
        state = next_state[state][action]
    return path


@functools.cache
def oracle_table(stage: str) -> tuple[int, ...]:
    """Return :func:`oracle_action` of every Taxi state (index = state) for ``stage``; -1 marks goal states."""
    return tuple(actions[0] if actions else -1 for actions in _optimal(_goal_kind(stage)))
