"""The Taxi world DangerousTaxi runs on: gymnasium's ``Taxi-v4`` map and transition table, read once per process.

Nothing here copies Taxi's map or rules: :func:`taxi` builds one deterministic :class:`TaxiEnv` and :func:`tables`
flattens its transition table ``P`` into tuples that are fast to index. A Taxi state is the ``int`` Taxi uses,
``((taxi_row * 5 + taxi_col) * 5 + passenger_location) * 4 + destination``; passenger location 4 means "in the taxi".
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from gymnasium.envs.toy_text.taxi import TaxiEnv

#: Taxi's actions, in Taxi's order.
SOUTH, NORTH, EAST, WEST, PICKUP, DROPOFF = range(6)
#: The short text of each action, indexed by Taxi's action number (``info["actions"]``).
ACTION_TEXTS: tuple[str, ...] = (
    "go south",
    "go north",
    "go east",
    "go west",
    "pick up the passenger",
    "drop off the passenger",
)
#: Compass name of each move action.
DIRECTIONS: tuple[str, ...] = ("south", "north", "east", "west")
#: Taxi's name letters of its four stops, in Taxi's location order (Red, Green, Yellow, Blue).
LOCATION_NAMES: tuple[str, ...] = ("R", "G", "Y", "B")
#: Passenger location meaning "in the taxi".
IN_TAXI = 4
NUM_STATES = 500
NUM_ACTIONS = 6


@functools.cache
def taxi() -> TaxiEnv:
    """Return the process-wide deterministic Taxi-v4 (not rainy, no fickle passenger) DangerousTaxi is built on."""
    return TaxiEnv()


class TaxiTables(NamedTuple):
    """Taxi's transition table ``P`` flattened: ``next_state[s][a]``, ``reward[s][a]``, ``terminated[s][a]``."""

    next_state: tuple[tuple[int, ...], ...]
    reward: tuple[tuple[float, ...], ...]
    terminated: tuple[tuple[bool, ...], ...]


@functools.cache
def tables() -> TaxiTables:
    """Return Taxi's deterministic transition table as nested tuples (built once per process)."""
    env = taxi()
    next_state, reward, terminated = [], [], []
    for state in range(NUM_STATES):
        rows = [env.P[state][action] for action in range(NUM_ACTIONS)]
        if any(len(row) != 1 for row in rows):  # pragma: no cover - guards against a stochastic Taxi
            raise RuntimeError("DangerousTaxi needs the deterministic Taxi (is_rainy=False).")
        next_state.append(tuple(int(row[0][1]) for row in rows))
        reward.append(tuple(float(row[0][2]) for row in rows))
        terminated.append(tuple(bool(row[0][3]) for row in rows))
    return TaxiTables(tuple(next_state), tuple(reward), tuple(terminated))


@functools.cache
def decode(state: int) -> tuple[int, int, int, int]:
    """Return ``(taxi_row, taxi_col, passenger_location, destination)`` of a Taxi state (Taxi's own ``decode``)."""
    row, col, passenger, destination = taxi().decode(int(state))
    return int(row), int(col), int(passenger), int(destination)


def encode(taxi_row: int, taxi_col: int, passenger: int, destination: int) -> int:
    """Return the Taxi state of ``(taxi_row, taxi_col, passenger_location, destination)`` (Taxi's own ``encode``)."""
    return int(taxi().encode(taxi_row, taxi_col, passenger, destination))


def location(index: int) -> tuple[int, int]:
    """Return the ``(row, col)`` of Taxi's stop number ``index`` (0 R, 1 G, 2 Y, 3 B)."""
    row, col = taxi().locs[index]
    return int(row), int(col)


def is_dangerous(state: int, action: int) -> bool:
    """Whether ``action`` leaves the Taxi state unchanged (a wall or border bump, an illegal pickup or drop-off)."""
    return tables().next_state[state][action] == state


def wall_blocks(row: int, col: int, action: int) -> bool:
    """Whether a wall (or the border) stops the taxi at ``(row, col)`` moving with ``action`` (0-3)."""
    return tables().next_state[encode(row, col, 0, 1)][action] == encode(row, col, 0, 1)


def is_delivered(state: int) -> bool:
    """Whether the passenger stands at the destination (Taxi's state right after a successful drop-off)."""
    _, _, passenger, destination = decode(state)
    return passenger == destination


def start_states() -> tuple[int, ...]:
    """All Taxi start states (those with non-zero probability in Taxi's ``initial_state_distrib``), ascending."""
    return tuple(int(s) for s in taxi().initial_state_distrib.nonzero()[0])
