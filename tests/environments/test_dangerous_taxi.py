"""Tests of the DangerousTaxi environment, its oracle and its teacher."""

from __future__ import annotations

import re
import warnings
from collections import deque

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import environments  # noqa: F401  (registers ReflectRL/...)
from environments.dangerous_taxi import (
    ACTION_TEXTS,
    STAGES,
    DangerousTaxiEnv,
    compact_text,
    distance_to_goal,
    grid_text,
    is_goal,
    is_wrong_action,
    optimal_actions,
    oracle_action,
    recommended_action,
    teacher_reflection,
)

ENV_ID = "ReflectRL/DangerousTaxi-v0"
SOUTH, NORTH, EAST, WEST, PICKUP, DROPOFF = range(6)
LOCS = [(0, 0), (0, 4), (4, 0), (4, 3)]  # Taxi's R, G, Y, B (only to build test cases)
RECOMMENDATION = re.compile(
    r"the best action now is to (go south|go north|go east|go west|pick up the passenger|"
    r"drop off the passenger)\.$"
)


@pytest.fixture(scope="module")
def taxi():
    """A real gymnasium Taxi-v4 to compare with."""
    return gym.make("Taxi-v4").unwrapped


def encode(row, col, passenger, destination):
    return ((row * 5 + col) * 5 + passenger) * 4 + destination


def decode(state):
    return state // 100, state // 20 % 5, state // 4 % 5, state % 4


def all_start_states(stage):
    if stage == "dropoff":  # every passenger/destination pair, taxi at the passenger's stop with the passenger inside
        return [encode(*LOCS[p], 4, d) for p in range(4) for d in range(4) if p != d]
    return [encode(r, c, p, d) for r in range(5) for c in range(5) for p in range(4) for d in range(4) if p != d]


def recommendation(reflection):
    match = RECOMMENDATION.search(reflection)
    assert match, f"no recommendation in {reflection!r}"
    return ACTION_TEXTS.index(match.group(1))


def mark_positions(grid, letter):
    """(row, col) of every ``letter`` in the map part of a grid observation."""
    lines = grid.splitlines()[2:7]  # the header, the top border, then five map rows
    return [(r, (i - 3) // 2) for r, line in enumerate(lines) for i, ch in enumerate(line) if ch == letter and i >= 3]


# -- gymnasium API ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("observation_format", ["grid", "compact"])
def test_check_env(observation_format):
    env = gym.make(ENV_ID, observation_format=observation_format)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped)
    assert env.action_space == gym.spaces.Discrete(6)


def test_constructor_validation():
    with pytest.raises(ValueError, match="observation_format"):
        DangerousTaxiEnv(observation_format="pixels")
    with pytest.raises(ValueError, match="stage"):
        DangerousTaxiEnv(stage="parking")
    with pytest.raises(ValueError, match="horizon"):
        DangerousTaxiEnv(horizon=0)
    assert DangerousTaxiEnv().reset(seed=0)[1]["stage"] == "full"
    assert DangerousTaxiEnv(stage="pickup").reset(seed=0)[1]["stage"] == "pickup"


def test_info_every_turn():
    env = DangerousTaxiEnv()
    _, info = env.reset(seed=1)
    infos = [info]
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(info["oracle_action"])
        infos.append(info)
        done = terminated or truncated
    for info in infos:
        assert set(info) >= {"actions", "oracle_action", "success", "invalid_action", "dangerous", "stage", "state"}
        assert info["actions"] == list(ACTION_TEXTS) == env.current_actions
        assert isinstance(info["oracle_action"], int) and 0 <= info["oracle_action"] < 6
        assert info["invalid_action"] is False and info["dangerous"] is False
        assert info["stage"] == "full" and isinstance(info["state"], int)
    assert infos[-1]["success"] is True and not any(info["success"] for info in infos[:-1])
    assert env.taxi_state == infos[-1]["state"]


# -- transitions, rewards, the danger rule ---------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_transitions_match_taxi_v4(stage, taxi):
    env = DangerousTaxiEnv(horizon=1000)
    rng = np.random.default_rng(0)
    dangerous_seen = 0
    for episode in range(150):
        _, info = env.reset(seed=episode, options={"stage": stage})
        taxi_state, _ = taxi.reset(seed=episode)
        if stage == "dropoff":
            row, col, passenger, destination = decode(taxi_state)
            assert info["state"] == encode(*LOCS[passenger], 4, destination)
            taxi.s = taxi_state = info["state"]
        assert info["state"] == taxi_state
        for _ in range(60):
            action = int(rng.integers(6))
            _, reward, terminated, truncated, info = env.step(action)
            previous, (taxi_state, taxi_reward, taxi_terminated, _, _) = taxi_state, taxi.step(action)
            assert info["state"] == taxi_state
            assert info["dangerous"] == (taxi_state == previous)
            if info["dangerous"]:
                dangerous_seen += 1
                assert (reward, terminated, info["success"]) == (-0.5, True, False)
                break
            if stage == "pickup" and action == PICKUP:
                assert (reward, terminated, info["success"]) == (1.0, True, True)
                break
            assert reward == pytest.approx(taxi_reward / 20)
            assert terminated == taxi_terminated == info["success"]
            assert not truncated
            if terminated:
                break
    assert dangerous_seen > 50


def danger_cases():
    return [
        ("wall", encode(0, 1, 3, 0), EAST),
        ("wall", encode(4, 1, 2, 1), WEST),
        ("border", encode(0, 0, 3, 1), NORTH),
        ("border", encode(4, 4, 0, 1), SOUTH),
        ("pickup without passenger", encode(2, 2, 0, 1), PICKUP),
        ("pickup with passenger inside", encode(2, 2, 4, 1), PICKUP),
        ("dropoff without passenger", encode(0, 0, 0, 1), DROPOFF),
        ("dropoff off a stop", encode(2, 2, 4, 1), DROPOFF),
    ]


@pytest.mark.parametrize(("kind", "state", "action"), danger_cases())
def test_danger_rule(kind, state, action):
    env = DangerousTaxiEnv()
    _, _, passenger, _ = decode(state)
    env.reset(seed=0, options={"state": state, "stage": "dropoff" if passenger == 4 else "full"})
    observation, reward, terminated, truncated, info = env.step(action)
    assert (reward, terminated, truncated) == (-0.5, True, False)
    assert info["success"] is False and info["dangerous"] is True and info["state"] == state
    with pytest.raises(RuntimeError, match="reset"):
        env.step(SOUTH)


def test_wrong_dropoff_at_a_stop_is_legal_not_dangerous():
    env = DangerousTaxiEnv()
    env.reset(options={"state": encode(*LOCS[2], 4, 1), "stage": "dropoff"})  # in the taxi at Y, wants to go to G
    _, reward, terminated, _, info = env.step(DROPOFF)
    assert (reward, terminated, info["dangerous"]) == (-0.05, False, False)
    assert decode(info["state"])[2] == 2  # the passenger now waits at Y
    assert info["oracle_action"] == PICKUP


def test_horizon_truncates():
    env = DangerousTaxiEnv(horizon=7)
    env.reset(options={"state": encode(2, 1, 0, 1)})
    for step in range(7):
        _, reward, terminated, truncated, info = env.step(EAST if step % 2 == 0 else WEST)
        assert not terminated and reward == -0.05
        assert truncated == (step == 6)
    assert info["success"] is False
    assert DangerousTaxiEnv().horizon == 20


def test_pickup_stage_success():
    env = DangerousTaxiEnv(stage="pickup")
    env.reset(options={"state": encode(0, 1, 0, 2)})
    _, reward, terminated, _, info = env.step(WEST)
    assert (reward, terminated, info["oracle_action"]) == (-0.05, False, PICKUP)
    observation, reward, terminated, truncated, info = env.step(PICKUP)
    assert (reward, terminated, truncated, info["success"], info["dangerous"]) == (1.0, True, False, True, False)
    assert "X" in observation


# -- the oracle ------------------------------------------------------------------------------------------------------


def forward_bfs_distance(taxi, start, goal):
    """Shortest safe path length from ``start`` to a state with ``goal(state)``, straight from Taxi-v4's ``P``."""
    seen, queue = {start: 0}, deque([start])
    while queue:
        state = queue.popleft()
        if goal(state):
            return seen[state]
        for action in range(6):
            ((_, successor, _, _),) = taxi.P[state][action]
            if successor != state and successor not in seen:
                seen[successor] = seen[state] + 1
                queue.append(successor)
    return None


@pytest.mark.parametrize("stage", STAGES)
def test_oracle_solves_every_start_state(stage, taxi):
    env = DangerousTaxiEnv()
    starts = all_start_states(stage)
    assert len(starts) == (12 if stage == "dropoff" else 300)
    goal = (lambda s: decode(s)[2] == 4) if stage == "pickup" else (lambda s: decode(s)[2] == decode(s)[3])
    for start in starts:
        _, info = env.reset(options={"stage": stage, "state": start})
        distance = distance_to_goal(start, stage)
        assert distance == forward_bfs_distance(taxi, start, goal)
        steps = 0
        done = False
        while not done:
            action = info["oracle_action"]
            assert action == oracle_action(info["state"], stage) == optimal_actions(info["state"], stage)[0]
            _, _, terminated, truncated, info = env.step(action)
            steps += 1
            done = terminated or truncated
            assert not info["dangerous"]
        assert info["success"] and terminated and steps == distance <= env.horizon


def test_oracle_on_every_state():
    for stage in STAGES:
        for state in range(500):
            if is_goal(state, stage):
                assert distance_to_goal(state, stage) == 0 and optimal_actions(state, stage) == []
                with pytest.raises(ValueError, match="goal"):
                    oracle_action(state, stage)
                continue
            distance = distance_to_goal(state, stage)
            assert distance > 0 and optimal_actions(state, stage)
            assert oracle_action(state, stage) == min(optimal_actions(state, stage))
    with pytest.raises(ValueError, match="stage"):
        oracle_action(0, "parking")
    with pytest.raises(ValueError, match="state"):
        distance_to_goal(500, "full")


# -- reset: stages, seeds, start states ------------------------------------------------------------------------------


def rollout(seed, stage="full", actions=(SOUTH, WEST, NORTH, EAST) * 5):
    env = DangerousTaxiEnv()
    observation, info = env.reset(seed=seed, options={"stage": stage})
    trace = [(observation, info["state"])]
    for action in actions:
        observation, reward, terminated, truncated, info = env.step(action)
        trace.append((observation, reward, info["state"]))
        if terminated or truncated:
            break
    return trace


@pytest.mark.parametrize("stage", STAGES)
def test_seeding(stage):
    assert rollout(7, stage) == rollout(7, stage)
    starts = {rollout(seed, stage)[0][1] for seed in range(10)}
    assert len(starts) >= 3
    env = DangerousTaxiEnv()
    first = env.reset(seed=11, options={"stage": stage})[1]["state"]
    unseeded = [env.reset(options={"stage": stage})[1]["state"] for _ in range(5)]
    assert env.reset(seed=11, options={"stage": stage})[1]["state"] == first
    assert [env.reset(options={"stage": stage})[1]["state"] for _ in range(5)] == unseeded


def test_start_states_follow_the_stage():
    env = DangerousTaxiEnv()
    for seed in range(40):
        for stage in STAGES:
            _, info = env.reset(seed=seed, options={"stage": stage})
            row, col, passenger, destination = decode(info["state"])
            assert passenger != destination
            if stage == "dropoff":
                assert passenger == 4 and (row, col) in LOCS and (row, col) != LOCS[destination]
            else:
                assert passenger < 4


def test_dropoff_start_reads_like_the_middle_of_a_full_ride():
    """A dropoff episode starts where a full ride's oracle has just picked the passenger up, and says so."""
    full, dropoff = DangerousTaxiEnv(observation_format="compact"), DangerousTaxiEnv(observation_format="compact")
    for seed in range(20):
        observation, info = full.reset(seed=seed, options={"stage": "full"})
        while info["state"] // 4 % 5 != 4:  # drive the full ride with the oracle until the passenger is aboard
            observation, *_, info = full.step(info["oracle_action"])
        start, start_info = dropoff.reset(seed=seed, options={"stage": "dropoff"})
        assert start_info["state"] == info["state"]
        assert start == observation and start.endswith("Last action: pick up the passenger.")
        assert dropoff.unwrapped.teacher_reflection() == full.unwrapped.teacher_reflection()
    assert "Last action" not in dropoff.reset(options={"stage": "dropoff", "state": encode(0, 0, 4, 1)})[0]


def test_reset_options_validation():
    env = DangerousTaxiEnv()
    with pytest.raises(ValueError, match="stage"):
        env.reset(options={"stage": "parking"})
    for bad in (500, -1, 1.5, "3", True):
        with pytest.raises(ValueError, match="state"):
            env.reset(options={"state": bad})
    with pytest.raises(ValueError, match="destination"):
        env.reset(options={"state": encode(2, 2, 1, 1)})
    with pytest.raises(ValueError, match="in the taxi"):
        env.reset(options={"stage": "dropoff", "state": encode(2, 2, 0, 1)})
    with pytest.raises(ValueError, match="pickup"):
        env.reset(options={"stage": "pickup", "state": encode(2, 2, 4, 1)})
    with pytest.raises(ValueError, match="option"):
        env.reset(options={"stag": "pickup"})
    assert env.reset(options={"state": np.int64(encode(2, 2, 0, 1))})[1]["state"] == encode(2, 2, 0, 1)


@pytest.mark.parametrize("action", [1.5, "a", None, True, 6, -1, np.float32(1.0)])
def test_bad_actions_raise(action):
    env = DangerousTaxiEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=re.escape("info['actions']")):
        env.step(action)


def test_numpy_actions_are_accepted():
    env = DangerousTaxiEnv()
    _, info = env.reset(seed=0)
    _, _, _, _, info = env.step(np.int64(info["oracle_action"]))
    _, _, _, _, info = env.step(np.array(info["oracle_action"]))
    assert not info["dangerous"]


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        DangerousTaxiEnv().step(0)


# -- observations ----------------------------------------------------------------------------------------------------


def test_grid_marks():
    waiting = grid_text(encode(2, 3, 0, 1))  # taxi (2, 3), passenger at R, destination G
    assert mark_positions(waiting, "T") == [(2, 3)]
    assert mark_positions(waiting, "P") == [(0, 0)]
    assert mark_positions(waiting, "D") == [(0, 4)]
    assert not mark_positions(waiting, "O") and not mark_positions(waiting, "X")

    on_passenger = grid_text(encode(4, 0, 2, 3))  # taxi on Y where the passenger waits, destination B
    assert mark_positions(on_passenger, "O") == [(4, 0)]
    assert mark_positions(on_passenger, "D") == [(4, 3)]
    assert not mark_positions(on_passenger, "T") and not mark_positions(on_passenger, "P")

    carrying = grid_text(encode(1, 2, 4, 2))  # passenger inside, destination Y
    assert mark_positions(carrying, "X") == [(1, 2)]
    assert mark_positions(carrying, "D") == [(4, 0)]
    assert not mark_positions(carrying, "T") and not mark_positions(carrying, "P") and not mark_positions(carrying, "O")


def test_grid_draws_taxi_walls(taxi):
    lines = grid_text(encode(2, 2, 0, 1)).splitlines()
    desc = [row.tobytes().decode() for row in taxi.desc]
    for line, row in zip(lines[1:8], desc, strict=True):
        body = line[2:]
        assert [i for i, ch in enumerate(body) if ch == "|"] == [i for i, ch in enumerate(row) if ch == "|"]
    assert lines[-1].startswith("T taxi, P passenger, D destination")


@pytest.mark.parametrize("observation_format", ["grid", "compact"])
def test_observations_fit_the_space(observation_format):
    env = DangerousTaxiEnv(observation_format=observation_format)
    texts = set()
    for state in all_start_states("full") + all_start_states("dropoff"):
        observation, _ = env.reset(options={"state": state})
        assert observation in env.observation_space
        assert "go south" not in observation and "pick up" not in observation
        texts.add(observation)
        if observation_format == "compact":
            assert len(observation) < 200
    assert len(texts) == 312  # every state looks different


def test_compact_text():
    assert compact_text(encode(2, 3, 0, 1)) == (
        "Taxi at row 2, column 3. Passenger at R (row 0, column 0). Destination G (row 0, column 4)."
    )
    assert "Passenger in the taxi." in compact_text(encode(2, 3, 4, 1))


def test_render():
    env = DangerousTaxiEnv(render_mode="ansi", observation_format="compact")
    env.reset(options={"state": encode(2, 3, 0, 1)})
    text = env.render()
    assert mark_positions(text, "T") == [(2, 3)]
    assert all(action in text for action in ACTION_TEXTS)


# -- the teacher -----------------------------------------------------------------------------------------------------


def reflection_cases(taxi):
    """(stage, state, last_action, previous_state) for every non-goal state, fresh and after every action."""
    for stage in STAGES:
        for state in range(500):
            if is_goal(state, stage) or decode(state)[2] == decode(state)[3]:
                continue
            yield stage, state, None, None
            for action in range(6):
                ((_, successor, _, _),) = taxi.P[state][action]
                if not is_goal(successor, stage):
                    yield stage, successor, action, state


@pytest.fixture(scope="module")
def cases(taxi):
    return list(reflection_cases(taxi))


def test_teacher_recommends_an_optimal_action(cases):
    for stage, state, last_action, previous in cases:
        reflection = teacher_reflection(state, stage, last_action, previous)
        assert recommendation(reflection) in optimal_actions(state, stage), (stage, state, reflection)
        assert recommended_action(reflection) == recommendation(reflection)
        if last_action is None:
            assert recommendation(reflection) == oracle_action(state, stage)
        assert 10 <= len(reflection.split()) <= 65, reflection
        assert 1 <= len(re.findall(r"\.(?:\s|$)", reflection)) <= 3, reflection  # one to three sentences


def test_teacher_is_deterministic(cases):
    for stage, state, last_action, previous in cases[::7]:
        assert teacher_reflection(state, stage, last_action, previous) == teacher_reflection(
            state, stage, last_action, previous
        )


def test_corrective_reflection_names_the_mistake(cases):
    corrective = 0
    for stage, state, last_action, previous in cases:
        if last_action is None:
            continue
        reflection = teacher_reflection(state, stage, last_action, previous)
        normal = teacher_reflection(state, stage)
        if previous == state:  # dangerous
            assert "dangerous" in reflection and reflection != normal
        elif is_wrong_action(previous, last_action, stage):
            corrective += 1
            assert reflection != normal
            assert "mistake" in reflection or "wrong" in reflection
            if last_action < 4:
                assert f"going {('south', 'north', 'east', 'west')[last_action]}" in reflection.lower()
            else:
                stop = "RGYB"[decode(state)[2]]
                assert last_action == DROPOFF and "drop" in reflection.lower() and f" {stop}" in reflection
        else:
            assert "mistake" not in reflection and "wrong" not in reflection
            assert last_action in optimal_actions(previous, stage)
        assert "mistake" not in normal and "wrong" not in normal
    assert corrective > 500


def test_teacher_explains_walls():
    # taxi at (0, 1) next to the wall east of it; passenger at B (4, 3): the direct way east is blocked
    reflection = teacher_reflection(encode(0, 1, 3, 0), "full")
    assert "wall east of the taxi" in reflection and recommendation(reflection) == SOUTH
    assert "R (row 0, column 0)" in reflection and "B (row 4, column 3)" in reflection
    assert "row 0, column 1" in reflection


def test_teacher_has_several_phrasings(cases):
    normal_openings = {" ".join(teacher_reflection(s, st).split()[:3]) for st, s, a, _ in cases if a is None}
    corrective_openings = {
        " ".join(teacher_reflection(s, st, a, p).split()[:3])
        for st, s, a, p in cases
        if a is not None and p != s and is_wrong_action(p, a, st)
    }
    assert len(normal_openings) >= 3 and len(corrective_openings) >= 3
    plans = {" ".join(teacher_reflection(s, st).split(". ")[-1].split()[:2]) for st, s, a, _ in cases if a is None}
    assert len(plans) >= 3


def test_teacher_rejects_inconsistent_history():
    with pytest.raises(ValueError):
        teacher_reflection(encode(2, 2, 0, 1), "full", SOUTH, encode(0, 0, 0, 1))
    with pytest.raises(ValueError):
        teacher_reflection(encode(2, 2, 0, 1), "full", SOUTH, None)


def test_env_teacher_follows_the_episode():
    env = DangerousTaxiEnv(stage="pickup")
    _, info = env.reset(options={"state": encode(2, 2, 0, 1)})
    first = env.teacher_reflection()
    assert recommendation(first) == info["oracle_action"]
    wrong = next(a for a in range(4) if a not in optimal_actions(encode(2, 2, 0, 1), "pickup"))
    _, _, _, _, info = env.step(wrong)
    after = env.teacher_reflection()
    assert "mistake" in after or "wrong" in after
    assert recommendation(after) == info["oracle_action"]
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(info["oracle_action"])
        done = terminated or truncated
    assert info["success"] and "best action" not in env.teacher_reflection()
