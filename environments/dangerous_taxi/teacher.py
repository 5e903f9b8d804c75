"""The rule-based teacher: short reflections written from the privileged Taxi state.

A reflection says where the taxi, the passenger and the destination are, which way to go and why (naming a wall that
blocks the direct way), and ends with the oracle's recommendation in a fixed form, "... the best action now is to
<action text>." (see :func:`recommended_action`). After a wrong last action (one that was not optimal in the
previous state) it first says what went wrong, then how to recover.

Everything here is a pure function of ``(state, stage, last_action, previous_state)``. Each sentence kind has three
phrasings, chosen deterministically from the state and the last action so that a model does not learn one sentence.
"""

from __future__ import annotations

import re

from environments.dangerous_taxi.dynamics import (
    ACTION_TEXTS,
    DIRECTIONS,
    DROPOFF,
    IN_TAXI,
    LOCATION_NAMES,
    NORTH,
    PICKUP,
    SOUTH,
    decode,
    location,
    tables,
    wall_blocks,
)
from environments.dangerous_taxi.oracle import (
    check_stage,
    check_state,
    distance_to_goal,
    is_goal,
    optimal_actions,
    oracle_action,
)

#: How every recommendation ends; :func:`recommended_action` reads the action text after it.
RECOMMENDATION = "the best action now is to"
_RECOMMENDATION_RE = re.compile(re.escape(RECOMMENDATION) + r" (.+?)\.\s*$")

# -- templates (three per sentence kind) ------------------------------------------------------------------------------

_SITUATION_WAITING = (
    "The taxi is at {taxi}, the passenger waits at {passenger} and the destination is {destination}.",
    "Taxi at {taxi}; the passenger is waiting at {passenger} and wants to go to {destination}.",
    "The passenger waits at {passenger} to be driven to {destination}, and the taxi is at {taxi}.",
)
_SITUATION_ABOARD = (
    "The taxi is at {taxi} with the passenger inside, and the destination is {destination}.",
    "Taxi at {taxi}, carrying the passenger to {destination}.",
    "The passenger is in the taxi at {taxi} and wants to go to {destination}.",
)
_PLAN_MOVE = (
    "{Target} is {offset}; {reason}, so {recommendation}.",
    "The taxi must get to {target}, {offset} from here, and {reason}, so {recommendation}.",
    "With {target} {offset}, {reason}, so {recommendation}.",
)
_RECOVER_MOVE = (
    "To recover, head for {target_at}, {offset}; {reason}, so {recommendation}.",
    "From {taxi}, {target_at} is now {offset} and {reason}, so {recommendation}.",
    "Back on track: {target_at} is {offset}, and {reason}, so {recommendation}.",
)
_PLAN_PICKUP = (
    "The taxi is on the passenger's square, so {recommendation}.",
    "The passenger is right here at {stop}, so {recommendation}.",
    "The taxi has reached the passenger at {stop}; {recommendation}.",
)
_RECOVER_PICKUP = (
    "To recover, note that the taxi is on the passenger's square at {stop}, so {recommendation}.",
    "The passenger is still right here at {stop}, so to recover {recommendation}.",
    "To get back on track at {stop}, where the passenger is, {recommendation}.",
)
_PLAN_DROPOFF = (
    "The taxi is at the destination {stop} with the passenger, so {recommendation}.",
    "This is the destination {stop}, so {recommendation}.",
    "The ride has reached {stop}, the destination; {recommendation}.",
)
_RECOVER_DROPOFF = (
    "To recover, note that the taxi is at the destination {stop} with the passenger, so {recommendation}.",
    "The taxi is still at the destination {stop}, so to recover {recommendation}.",
    "To get back on track at the destination {stop}, {recommendation}.",
)
_MISTAKE_AWAY = (
    "Going {direction} was a mistake that took the taxi away from {target} ({after} steps to go instead of {before}).",
    "The last move, going {direction}, was wrong because it led away from {target}.",
    "Going {direction} was a wrong turn away from {target}, costing extra steps.",
)
_MISTAKE_DROPOFF = (
    "Dropping the passenger off at {stop} was a mistake: {stop} is not the destination {destination}.",
    "The last action dropped the passenger off at {stop}, the wrong stop: they want to go to {destination}.",
    "Dropping off at {stop} was wrong, since the destination is {destination}, not {stop}.",
)
_MISTAKE_BUMP = (
    "Going {direction} drove the taxi into {obstacle}, a dangerous mistake that ends the ride.",
    "Going {direction} was a dangerous mistake: {obstacle} is {direction} of the taxi.",
    "The last action, going {direction}, hit {obstacle}; that was dangerous and wrong.",
)
_MISTAKE_ILLEGAL = (
    "Trying to {action} here was a dangerous mistake, because {why}.",
    "It was wrong to {action} here: {why}, so the action was dangerous.",
    "The last action tried to {action}, but {why}; that was a dangerous mistake.",
)
_DONE_PICKUP = (
    "The passenger is in the taxi at {taxi}, so the pickup task is done.",
    "Pickup complete: the passenger got in at {taxi}.",
    "The taxi at {taxi} has picked up the passenger; this stage is finished.",
)
_DONE_DELIVERED = (
    "The passenger has been delivered to {destination}; the ride is over.",
    "Delivery complete: the passenger got out at the destination {destination}.",
    "The taxi brought the passenger to {destination}, so the task is done.",
)


def _pick(templates: tuple[str, ...], state: int, last_action: int | None, salt: int) -> str:
    """Choose a phrasing deterministically from the state and the last action."""
    key = state * 31 + (0 if last_action is None else last_action + 1) * 17 + salt * 7
    return templates[key % len(templates)]


# -- describing the world ---------------------------------------------------------------------------------------------


def _square(row: int, col: int) -> str:
    return f"row {row}, column {col}"


def _stop(index: int) -> str:
    return f"{LOCATION_NAMES[index]} ({_square(*location(index))})"


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _offset(row: int, col: int, target: tuple[int, int]) -> str:
    drow, dcol = target[0] - row, target[1] - col
    parts = []
    if drow:
        parts.append(f"{_count(abs(drow), 'row')} {'south' if drow > 0 else 'north'}")
    if dcol:
        parts.append(f"{_count(abs(dcol), 'column')} {'east' if dcol > 0 else 'west'}")
    return " and ".join(parts)


def _direct_moves(row: int, col: int, target: tuple[int, int]) -> list[int]:
    """Move actions that shorten the straight-line (Manhattan) distance to ``target``, vertical first."""
    drow, dcol = target[0] - row, target[1] - col
    moves = []
    if drow:
        moves.append(SOUTH if drow > 0 else NORTH)
    if dcol:
        moves.append(2 if dcol > 0 else 3)  # east / west
    return moves


def _reason(row: int, col: int, target: tuple[int, int], action: int, good: list[int]) -> str:
    """Why ``action`` (a move) is the way to go: name a wall that blocks the direct way, if one does."""
    direct = _direct_moves(row, col, target)
    blocked_here = [move for move in direct if wall_blocks(row, col, move)]
    if action in direct:
        if blocked_here:
            return f"a wall {DIRECTIONS[blocked_here[0]]} of the taxi blocks the direct way"
        longer = [move for move in direct if move not in good]
        if longer:
            return f"going {DIRECTIONS[longer[0]]} would run into walls further on"
        return f"the road {DIRECTIONS[action]} is open"
    if blocked_here:
        return f"a wall {DIRECTIONS[blocked_here[0]]} of the taxi forces a detour"
    return "walls on the direct way force a detour"


def _plan(state: int, stage: str, last_action: int | None, recovering: bool) -> str:
    """Say where to go and why, ending with the oracle's recommendation."""
    row, col, passenger, destination = decode(state)
    action = oracle_action(state, stage)
    recommendation = f"{RECOMMENDATION} {ACTION_TEXTS[action]}"
    salt = 2 if recovering else 1
    if action == PICKUP:
        templates = _RECOVER_PICKUP if recovering else _PLAN_PICKUP
        return _pick(templates, state, last_action, salt).format(
            stop=LOCATION_NAMES[passenger], recommendation=recommendation
        )
    if action == DROPOFF:
        templates = _RECOVER_DROPOFF if recovering else _PLAN_DROPOFF
        return _pick(templates, state, last_action, salt).format(
            stop=LOCATION_NAMES[destination], recommendation=recommendation
        )
    if passenger == IN_TAXI:
        target_index, target, target_at = (
            destination,
            "the destination",
            f"the destination {LOCATION_NAMES[destination]}",
        )
    else:
        target_index, target, target_at = passenger, "the passenger", f"the passenger at {LOCATION_NAMES[passenger]}"
    target_square = location(target_index)
    offset = _offset(row, col, target_square)
    reason = _reason(row, col, target_square, action, optimal_actions(state, stage))
    if passenger == IN_TAXI:
        target = f"the destination {LOCATION_NAMES[destination]}"
    templates = _RECOVER_MOVE if recovering else _PLAN_MOVE
    return _pick(templates, state, last_action, salt).format(
        Target=target[0].upper() + target[1:],
        target=target,
        target_at=target_at,
        taxi=_square(row, col),
        offset=offset,
        reason=reason,
        recommendation=recommendation,
    )


def _situation(state: int, last_action: int | None) -> str:
    row, col, passenger, destination = decode(state)
    templates = _SITUATION_ABOARD if passenger == IN_TAXI else _SITUATION_WAITING
    return _pick(templates, state, last_action, 0).format(
        taxi=_square(row, col),
        passenger=_stop(passenger) if passenger != IN_TAXI else "",
        destination=_stop(destination),
    )


def _illegal_why(state: int, action: int) -> str:
    row, col, passenger, destination = decode(state)
    if action == PICKUP:
        if passenger == IN_TAXI:
            return "the passenger is already in the taxi"
        return f"the passenger waits at {LOCATION_NAMES[passenger]}, not here"
    if passenger != IN_TAXI:
        return "there is no passenger in the taxi"
    return f"the passenger can only get out at the destination {LOCATION_NAMES[destination]}"


def _mistake(previous_state: int, state: int, stage: str, last_action: int) -> str | None:
    """Say what went wrong with ``last_action``, or return ``None`` if it was an optimal action."""
    if previous_state == state:  # a dangerous action: nothing changed and the episode ended
        row, col, _, _ = decode(state)
        if last_action < PICKUP:
            edge = (
                (last_action == SOUTH and row == 4)
                or (last_action == NORTH and row == 0)
                or (last_action == 2 and col == 4)
                or (last_action == 3 and col == 0)
            )
            obstacle = "the edge of the map" if edge else "a wall"
            return _pick(_MISTAKE_BUMP, state, last_action, 3).format(
                direction=DIRECTIONS[last_action], obstacle=obstacle
            )
        return _pick(_MISTAKE_ILLEGAL, state, last_action, 3).format(
            action=ACTION_TEXTS[last_action], why=_illegal_why(state, last_action)
        )
    if is_goal(previous_state, stage) or last_action in optimal_actions(previous_state, stage):
        return None
    _, _, passenger, destination = decode(state)
    if last_action == DROPOFF:  # the passenger got out at a stop that is not the destination
        return _pick(_MISTAKE_DROPOFF, state, last_action, 3).format(
            stop=LOCATION_NAMES[passenger], destination=LOCATION_NAMES[destination]
        )
    target = "the destination" if passenger == IN_TAXI else "the passenger"
    return _pick(_MISTAKE_AWAY, state, last_action, 3).format(
        direction=DIRECTIONS[last_action],
        target=target,
        before=distance_to_goal(previous_state, stage),
        after=distance_to_goal(state, stage),
    )


def is_wrong_action(previous_state: int, action: int, stage: str) -> bool:
    """Whether ``action`` in ``previous_state`` is not among the optimal actions of ``stage`` (a wrong action)."""
    return not is_goal(previous_state, stage) and action not in optimal_actions(previous_state, stage)


def teacher_reflection(
    state: int, stage: str, last_action: int | None = None, previous_state: int | None = None
) -> str:
    """Write the teacher's reflection on a Taxi state.

    A normal reflection has two sentences: where the taxi, passenger and destination are, then which way to go and
    why, ending with "the best action now is to <action text>." where the action is the oracle's. After a wrong
    ``last_action`` the reflection is corrective instead: what went wrong, then how to recover (still ending with the
    oracle's recommendation). Once the stage's goal is reached it says the task is done and recommends nothing.

    Args:
        state: The current Taxi state.
        stage: The curriculum stage (``"pickup"``, ``"dropoff"`` or ``"full"``); it sets the goal.
        last_action: The action (Taxi's numbering) that led to ``state``, or ``None`` at the start of an episode.
        previous_state: The Taxi state ``last_action`` was taken in; required with ``last_action``.

    Returns:
        One to three sentences (about 20 to 60 words).

    Raises:
        ValueError: for a bad state or stage, a ``last_action`` without ``previous_state`` (or the other way
            round), or a ``last_action`` that does not lead from ``previous_state`` to ``state``.

    """
    state = check_state(state)
    check_stage(stage)
    if (last_action is None) != (previous_state is None):
        raise ValueError("teacher_reflection needs last_action and previous_state together (or neither).")
    mistake = None
    if last_action is not None:
        previous_state = check_state(previous_state)
        last_action = int(last_action)
        if not 0 <= last_action < len(ACTION_TEXTS) or tables().next_state[previous_state][last_action] != state:
            raise ValueError(f"Action {last_action!r} does not lead from Taxi state {previous_state} to state {state}.")
        mistake = _mistake(previous_state, state, stage, last_action)
    row, col, _, destination = decode(state)
    if is_goal(state, stage):
        templates = _DONE_PICKUP if stage == "pickup" else _DONE_DELIVERED
        return _pick(templates, state, last_action, 4).format(taxi=_square(row, col), destination=_stop(destination))
    if mistake is not None:
        return f"{mistake} {_plan(state, stage, last_action, recovering=True)}"
    return f"{_situation(state, last_action)} {_plan(state, stage, last_action, recovering=False)}"


def recommended_action(reflection: str) -> int | None:
    """Read the recommended action (Taxi's numbering) off a reflection, or ``None`` if it recommends none.

    Works on any text that ends with "the best action now is to <action text>." (the teacher's form).
    """
    match = _RECOMMENDATION_RE.search(reflection.strip())
    if match is None:
        return None
    text = match.group(1).strip().lower()
    return ACTION_TEXTS.index(text) if text in ACTION_TEXTS else None
