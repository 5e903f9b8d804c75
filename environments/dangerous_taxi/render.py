"""Text observations of a Taxi state: an ASCII map (``grid``) and a short sentence form (``compact``).

Both are pure functions of the Taxi state and are precomputed for all 500 states on first use, so an environment step
only looks its observation up.

``grid`` draws Taxi's own map (``|`` is a wall, ``:`` open road) with row and column numbers and these marks:
``T`` taxi, ``P`` passenger waiting, ``D`` destination, ``O`` taxi on the passenger's square (passenger not yet in),
``X`` taxi carrying the passenger; a stop's letter (``R``, ``G``, ``Y``, ``B``) stays visible when no mark covers it.
"""

from __future__ import annotations

import functools

from environments.dangerous_taxi.dynamics import IN_TAXI, LOCATION_NAMES, NUM_STATES, decode, location, taxi

#: The observation formats :func:`observation` knows.
OBSERVATION_FORMATS: tuple[str, ...] = ("grid", "compact")
#: The last line of every ``grid`` observation.
GRID_LEGEND = "T taxi, P passenger, D destination, O taxi at the passenger, X taxi with the passenger, | wall."


def _square(row: int, col: int) -> str:
    return f"row {row}, column {col}"


def _stop(index: int) -> str:
    row, col = location(index)
    return f"{LOCATION_NAMES[index]} ({_square(row, col)})"


def grid_text(state: int) -> str:
    """Return the ``grid`` observation of a Taxi state (map with row/column numbers, then :data:`GRID_LEGEND`)."""
    row, col, passenger, destination = decode(state)
    lines = [[ch.decode() if isinstance(ch, bytes) else ch for ch in line] for line in taxi().desc.tolist()]

    def mark(r: int, c: int, letter: str) -> None:
        lines[1 + r][2 * c + 1] = letter

    delivered = passenger == destination
    dest_row, dest_col = location(destination)
    if (dest_row, dest_col) != (row, col):
        mark(dest_row, dest_col, "D")
    if passenger != IN_TAXI and not delivered and location(passenger) != (row, col):
        mark(*location(passenger), "P")
    if passenger == IN_TAXI:
        taxi_mark = "X"
    elif not delivered and location(passenger) == (row, col):
        taxi_mark = "O"
    else:
        taxi_mark = "T"
    mark(row, col, taxi_mark)

    width = len(lines[0])
    header = "  " + "".join(str((i - 1) // 2) if i % 2 == 1 and 0 < i < width - 1 else " " for i in range(width))
    body = [("  " if i in (0, len(lines) - 1) else f"{i - 1} ") + "".join(line) for i, line in enumerate(lines)]
    return "\n".join([header.rstrip(), *body, GRID_LEGEND])


def compact_text(state: int) -> str:
    """Return the ``compact`` observation of a Taxi state: three short sentences, positions in words and numbers."""
    row, col, passenger, destination = decode(state)
    if passenger == IN_TAXI:
        where = "Passenger in the taxi."
    elif passenger == destination:
        where = "Passenger delivered."
    else:
        where = f"Passenger at {_stop(passenger)}."
    return f"Taxi at {_square(row, col)}. {where} Destination {_stop(destination)}."


_RENDERERS = {"grid": grid_text, "compact": compact_text}


def check_observation_format(observation_format: str) -> str:
    """Return ``observation_format`` if it is one of :data:`OBSERVATION_FORMATS`.

    Raises:
        ValueError: for an unknown format.

    """
    if observation_format not in _RENDERERS:
        raise ValueError(
            f"Unknown observation_format {observation_format!r}; choose one of {', '.join(OBSERVATION_FORMATS)}."
        )
    return observation_format


@functools.cache
def observation_table(observation_format: str) -> tuple[str, ...]:
    """Return the observation of every Taxi state (index = state) in ``observation_format``, built once."""
    render = _RENDERERS[check_observation_format(observation_format)]
    return tuple(render(state) for state in range(NUM_STATES))


def observation(state: int, observation_format: str = "grid") -> str:
    """Return the observation text of a Taxi state in ``observation_format`` (``"grid"`` or ``"compact"``)."""
    return observation_table(observation_format)[state]
