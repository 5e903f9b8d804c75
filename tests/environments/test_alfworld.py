"""Tests of the ALFWorld environment on the real engine (``alfworld`` extra), its scene generator and its teacher.

Tests that play games use the real ALFWorld/TextWorld engine on scenes the tests generate (no network); they skip
when the extra is not installed (``pytest.importorskip("alfworld")`` in the fixtures). The missing-extra error and the
scene generator need no engine and always run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from alfworld_fixtures import make_broken_tree, make_data_tree, tree_files
from gymnasium.utils.env_checker import check_env

import environments  # noqa: F401  (registers ReflectRL/...)
from datamodules.prompt import recommended_action
from environments.alfworld import (
    RECOMMENDATION,
    STAGES,
    TASK_TYPES,
    ALFWorldEnv,
    GameDataError,
    Goal,
    Memory,
    TeacherState,
    catalog,
    choose,
    find_games,
    generate_scene,
    generated_games,
    mistake_actions,
    parse_command,
    reflect,
    scene_seed,
    search_order,
    write_scene,
)
from environments.alfworld.grounding import ungrounded
from environments.alfworld.task_types import GOALS

ENV_ID = "ReflectRL/ALFWorld-v1"
SCENES_PER_TYPE = 3
INFO_KEYS = {
    "actions",
    "teacher_action",
    "oracle_action",
    "mistake_actions",
    "success",
    "invalid_action",
    "stage",
    "task_type",
    "task",
    "game",
    "step",
    "expert_plan",
}


@pytest.fixture(scope="module")
def engine_installed(tmp_path_factory):
    """Skip without the ``alfworld`` extra (importing alfworld without ALFWORLD_DATA would create ~/.cache/alfworld)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ALFWORLD_DATA", os.environ.get("ALFWORLD_DATA") or str(tmp_path_factory.mktemp("alfworld_data")))
        pytest.importorskip("alfworld")
        pytest.importorskip("textworld")
        pytest.importorskip("fast_downward")


@pytest.fixture(scope="module")
def env(engine_installed, tmp_path_factory):
    """One environment (one engine process) shared by the module's tests."""
    env = ALFWorldEnv(num_scenes=SCENES_PER_TYPE, scene_dir=tmp_path_factory.mktemp("scenes"))
    yield env
    env.close()


def play_oracle(env, game_id, key="teacher_action"):
    """Play one game with the searching teacher (or the planner: ``key="oracle_action"``); return the rewards, the
    last step's flags and the infos."""
    observation, info = env.reset(options={"game": game_id})
    infos, rewards = [info], []
    terminated = truncated = False
    while not (terminated or truncated):
        if key == "oracle_action":
            assert info["actions"][info["oracle_action"]] == info["expert_plan"][0]
        observation, reward, terminated, truncated, info = env.step(info[key])
        infos.append(info)
        rewards.append(reward)
    return rewards, terminated, truncated, infos


# -- without the engine ------------------------------------------------------------------------------------------------


def test_registering_does_not_import_alfworld():
    code = (
        "import sys, gymnasium, environments; "
        "assert 'ReflectRL/ALFWorld-v1' in gymnasium.registry; "
        "import environments.alfworld; "
        "bad = [m for m in ('alfworld', 'textworld', 'fast_downward') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2], timeout=120)


def test_missing_extra_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "alfworld", None)  # importlib.util.find_spec("alfworld") is now None
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install -e '.[alfworld]'")) as error:
        gym.make(ENV_ID)
    assert "missing: alfworld" in str(error.value)


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_generated_scenes_are_seeded_and_well_formed(task_type, tmp_path):
    scene = generate_scene(task_type, seed=7)
    assert generate_scene(task_type, seed=7) == scene
    assert generate_scene(task_type, seed=8).problem_pddl() != scene.problem_pddl()
    assert len(scene.receptacles) == 6 and len(scene.items) >= 4
    assert scene.task_type == task_type
    problem = scene.problem_pddl()
    assert problem.count("(") == problem.count(")")
    assert "(:domain alfred)" in problem and "(atLocation agent1 loc_bar_" in problem
    assert "|" not in problem and "+" not in problem  # ids are mangled as in the data set
    trial = write_scene(scene, tmp_path)
    assert trial == tmp_path / scene.name and (trial / "initial_state.pddl").read_text() == problem
    data = (trial / "traj_data.json").read_text()
    assert f'"task_type": "{task_type}"' in data and '"object_target": "' in data
    assert scene.name.startswith(f"{task_type}-{scene.object_class}-None-{scene.parent_name}-6/trial_")
    assert write_scene(scene, tmp_path) == trial  # idempotent
    target = scene.items[0]
    start = next(r for r in scene.receptacles if r.id == target.receptacle)
    assert start.cls != scene.receptacle_class  # never done at the start
    if task_type in catalog.APPLIANCE:
        assert any(r.cls == catalog.APPLIANCE[task_type] for r in scene.receptacles)


def test_scene_generator_filters_and_errors():
    scene = generate_scene("pick_and_place_simple", 3, object_classes=["tomato"], receptacle_classes=["Microwave"])
    assert (scene.object_class, scene.receptacle_class) == ("Tomato", "Microwave")
    with pytest.raises(ValueError, match="Unknown ALFWorld task type"):
        generate_scene("pick_up_everything", 0)
    with pytest.raises(ValueError, match="Unknown object class 'Dragon'"):
        generate_scene("pick_and_place_simple", 0, object_classes=["Dragon"])
    with pytest.raises(ValueError, match="relax object_types"):
        generate_scene("pick_heat_then_place_in_recep", 0, object_classes=["Book"])
    with pytest.raises(ValueError, match="num_receptacles"):
        generate_scene("pick_and_place_simple", 0, num_receptacles=2)
    games = generated_games("/nowhere", num_scenes=2, object_classes=["Tomato"], receptacle_classes=["Microwave"])
    no_scene = {"look_at_obj_in_light", "pick_heat_then_place_in_recep"}  # no goal receptacle / heated in it
    assert {g.task_type for g in games} == set(TASK_TYPES) - no_scene
    assert all(g.game_file.startswith("/nowhere/") and g.scene is not None for g in games)
    with pytest.raises(ValueError, match="No generated ALFWorld scene meets"):
        generated_games("/nowhere", num_scenes=1, object_classes=["Book"], receptacle_classes=["Fridge"])
    assert scene_seed(0, "pick_and_place_simple", 1) == scene_seed(0, "pick_and_place_simple", 1)
    assert scene_seed(0, "pick_and_place_simple", 1) != scene_seed(1, "pick_and_place_simple", 1)


ROOM = "You are in the middle of a room. Looking quickly around you, you see a cabinet 1, a fridge 1, a countertop 1."
TOMATO = Goal("pick_and_place_simple", "Tomato", "CounterTop")
PLAN = ("go to fridge 1", "open fridge 1", "take tomato 1 from fridge 1", "go to countertop 1", "move tomato 1 to "
        "countertop 1")  # fmt: skip


def test_memory_reads_the_engine_answers():
    memory = Memory.from_room(ROOM)
    assert memory.receptacles == ("cabinet 1", "fridge 1", "countertop 1") and memory.lines(2) == [
        "Holding: nothing.", "Not checked: cabinet 1, fridge 1, and 1 more."]  # fmt: skip
    memory.observe("You arrive at fridge 1. The fridge 1 is closed.")
    assert memory.location == "fridge 1" and "fridge 1" in memory.closed and not memory.checked("fridge 1")
    memory.observe("You open the fridge 1. The fridge 1 is open. In it, you see a egg 2, and a tomato 1.")
    assert memory.contents == {"fridge 1": ("egg 2", "tomato 1")} and not memory.closed
    memory.observe("You arrive at countertop 1. On the countertop 1, you see nothing.")
    assert list(memory.contents) == ["countertop 1", "fridge 1"]  # the most recent first
    memory.observe("You pick up the tomato 1 from the fridge 1.")
    assert memory.holding == "tomato 1" and memory.contents["fridge 1"] == ("egg 2",)
    memory.observe("You move the tomato 1 to the countertop 1.")
    assert memory.holding is None and memory.where("tomato 1") == "countertop 1"
    assert memory.lines(1)[1] == "Checked: countertop 1 (tomato 1), and 1 more."


def test_the_teacher_searches_before_it_uses_the_plan():
    assert search_order(["cabinet 1", "fridge 1", "countertop 2", "countertop 1"], "Tomato") == [
        "countertop 1",
        "countertop 2",
        "fridge 1",
        "cabinet 1",
    ]  # fmt: skip  (a cabinet cannot hold a tomato)
    memory = Memory.from_room(ROOM)
    actions = ["go to cabinet 1", "go to countertop 1", "go to fridge 1"]
    move = choose(TOMATO, memory, PLAN, actions)
    assert (move.command, move.kind) == ("go to countertop 1", "search")  # not the planner's fridge: it is unseen
    text = reflect(TeacherState("put a tomato in countertop", TOMATO, memory, move))
    assert (
        text.endswith(f"{RECOMMENDATION} go to countertop 1.") and "fridge" not in text and not ungrounded(text, [ROOM])
    )
    memory.observe("You arrive at countertop 1. On the countertop 1, you see a apple 1.")
    assert choose(TOMATO, memory, PLAN, actions).command == "go to fridge 1"
    memory.observe("You arrive at fridge 1. The fridge 1 is closed.")
    assert choose(TOMATO, memory, PLAN, ["open fridge 1", "go to cabinet 1"]).command == "open fridge 1"
    memory.observe("You open the fridge 1. The fridge 1 is open. In it, you see a tomato 1.")
    take = choose(TOMATO, memory, PLAN[2:], ["take tomato 1 from fridge 1", "close fridge 1", "go to cabinet 1"])
    assert (take.command, take.kind) == ("take tomato 1 from fridge 1", "plan")
    actions = ["close fridge 1", "go to cabinet 1", "go to countertop 1", "take tomato 1 from fridge 1"]
    wrong = [actions[i] for i in mistake_actions(TOMATO, memory, actions, take.command)]
    assert wrong == ["close fridge 1"]  # the cabinet is unchecked, the countertop is the goal's class


def test_reflections_after_mistakes_and_at_the_end():
    memory = Memory.from_room(ROOM)
    memory.observe("You arrive at countertop 1. On the countertop 1, you see a apple 1.")
    move = choose(TOMATO, memory, PLAN, ["go to cabinet 1", "go to fridge 1", "take apple 1 from countertop 1"])
    wrong = TeacherState("put a tomato in countertop", TOMATO, memory, move, "take apple 1 from countertop 1",
                         last_mistake=True, step=2)  # fmt: skip
    text = reflect(wrong)
    assert text.startswith("Taking the apple 1 was a mistake") and "To recover:" in text
    assert reflect(wrong) == text  # deterministic
    assert "To recover:" not in reflect(TeacherState("t", TOMATO, memory, move, "go to countertop 1", step=2))
    invalid = reflect(TeacherState("t", TOMATO, memory, move, last_invalid=True, step=2))
    assert "listed actions" in invalid or "list of actions" in invalid
    done = TeacherState("put a tomato in countertop", TOMATO, memory, None, won=True)
    assert RECOMMENDATION not in reflect(done) and "put a tomato in countertop" in reflect(done)
    assert parse_command("take tomato 1 from fridge 1") == parse_command(" take  tomato 1 from fridge 1")
    assert parse_command("heat mug 2 with microwave 1").verb == "heat"


def test_the_grounding_check_finds_unseen_facts():
    seen = [ROOM, "> go to fridge 1\nYou arrive at fridge 1. The fridge 1 is closed."]
    assert ungrounded("The fridge 1 is closed, so I open it. Next: open fridge 1.", seen) == []
    assert ungrounded("The tomato 1 I need is in the fridge 1.", seen)  # the privileged v0 sentence
    assert ungrounded("I have not seen a tomato yet.", [*seen, "In it, you see a tomato 1."])
    assert ungrounded("I saw the tomato 1 in the fridge 1.", ["Checked: fridge 1 (tomato 1)."])  # not the memory


def test_data_path_errors(tmp_path, monkeypatch, engine_installed):
    with pytest.raises(GameDataError, match="is not a directory.*json_2.1.1"):
        ALFWorldEnv(data_path=tmp_path / "nowhere", scene_dir=tmp_path / "s")
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    with pytest.raises(GameDataError, match="environment variable that is not set"):
        ALFWorldEnv(data_path="$ALFWORLD_DATA/json_2.1.1", scene_dir=tmp_path / "s")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GameDataError, match="No playable ALFWorld game.*0 trial folders"):
        ALFWorldEnv(data_path=tmp_path / "empty", scene_dir=tmp_path / "s")
    tree = make_data_tree(tmp_path / "data")
    with pytest.raises(GameDataError, match="No playable ALFWorld game.*'Potato'"):
        ALFWorldEnv(data_path=tree, object_types=["Potato"], scene_dir=tmp_path / "s")


def test_find_games_filters_like_alfworld(tmp_path):
    tree = make_data_tree(tmp_path)
    games = find_games(tmp_path, object_classes=["tomato"], build_dir=tmp_path / "build")
    assert len(games) == 2  # the unsolvable and the movable trial are skipped
    assert {(g.object_class, g.receptacle_class) for g in games} == {("Tomato", "Microwave"), ("Tomato", "Fridge")}
    assert [g.game_id for g in games] == sorted(g.game_id for g in games)
    assert all(g.game_file.startswith(str(tmp_path / "build")) for g in games)
    in_split = find_games(tree / "train", receptacle_classes=["Microwave"])  # ids are relative to the given folder
    assert [f"train/{g.game_id}" for g in in_split] == [g.game_id for g in games if g.receptacle_class == "Microwave"]


# -- with the engine ---------------------------------------------------------------------------------------------------


def test_check_env_passes(engine_installed, tmp_path):
    env = gym.make(ENV_ID, num_scenes=1, scene_dir=tmp_path, render_mode="ansi")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no gymnasium warning either
        check_env(env.unwrapped, skip_render_check=True)  # the render check starts an engine per render mode
    env.reset(seed=0)
    text = env.render()
    assert text.startswith("Your task is to: ") and "\nActions:\n  0: go to " in text
    env.close()


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_planner_and_searching_teacher_solve_every_generated_scene(env, task_type):
    game_ids = env.game_ids(task_type)
    assert len(game_ids) == SCENES_PER_TYPE and all(g.startswith(task_type) for g in game_ids)
    for game_id in game_ids:
        rewards, terminated, truncated, infos = play_oracle(env, game_id, "oracle_action")
        assert terminated and not truncated and infos[-1]["success"]
        assert rewards[-1] == 1.0 and sum(rewards) == 1.0
        assert len(rewards) == len(infos[0]["expert_plan"]) <= env.horizon // 2  # the horizon leaves slack
        assert [i["success"] for i in infos[:-1]] == [False] * len(rewards)
        searched, terminated, _, _ = play_oracle(env, game_id)
        assert terminated and len(rewards) <= len(searched) < env.horizon
        assert env.teacher_reflection().startswith(("The task is done", "Task complete", "Done:"))


def test_reflections_state_only_what_the_episode_has_shown(env):
    """Over every scene of the module's environment (3 per task type; the benchmark checks all 96 training scenes),
    with deliberate mistakes: each reflection passes the grounding check, names the chosen command last and each
    mistake is followed by a corrective one."""
    rng = np.random.default_rng(0)
    mistakes = 0
    for game_id in env.game_ids():
        observation, info = env.reset(options={"game": game_id})
        observations, done, mistaken = [observation], False, False
        while not done:
            reflection = env.teacher_reflection()
            assert ungrounded(reflection, observations) == [], reflection
            assert ("To recover:" in reflection) == mistaken
            assert reflection.endswith(f"{RECOMMENDATION} {info['actions'][info['teacher_action']]}.")
            assert recommended_action(reflection, info["actions"]) == info["teacher_action"]
            mistaken = bool(info["mistake_actions"]) and rng.random() < 0.3
            action = int(rng.choice(info["mistake_actions"])) if mistaken else info["teacher_action"]
            mistakes += mistaken
            observation, _, terminated, truncated, info = env.step(action)
            observations.append(observation)
            done = terminated or truncated
            assert not (mistaken and done)
    assert mistakes >= 10


def test_observation_actions_and_info(env):
    observation, info = env.reset(seed=3, options={"stage": "pick_heat_then_place_in_recep"})
    assert set(info) == INFO_KEYS
    assert info["stage"] == info["task_type"] == "pick_heat_then_place_in_recep" and info["step"] == 0
    lines = observation.splitlines()
    assert lines[0] == f"Your task is to: {info['task']}."
    assert "hot" in info["task"] or "heat" in info["task"]
    assert lines[1] == "Holding: nothing." and lines[2].startswith("Not checked: ")
    assert lines[3].startswith("You are in the middle of a room. Looking quickly around you, you see ")
    assert not {"help", "look", "inventory"} & set(info["actions"])
    assert all(a.startswith("go to ") for a in info["actions"])
    assert info["actions"] == env.current_actions and len(info["actions"]) <= env.max_actions
    assert info["actions"][info["oracle_action"]] == info["expert_plan"][0]
    assert env.observation_space.contains(observation)
    for _ in range(5):
        observation, reward, terminated, truncated, info = env.step(info["teacher_action"])
    commands = [line for line in observation.splitlines() if line.startswith("> ")]
    assert len(commands) == env.history_length + 1  # the earlier turns, then the current one; the room is gone
    assert "You are in the middle" not in observation and "Checked: " in observation
    assert info["step"] == 5 and env.observation_space.contains(observation)


def test_same_seed_same_episode_across_processes(env, tmp_path):
    def episode(e, seed):
        observation, info = e.reset(seed=seed, options={"stage": "all"})
        trace = [(observation, info["game"], info["expert_plan"])]
        for _ in range(3):
            choice = info["mistake_actions"][0] if info["mistake_actions"] else info["teacher_action"]
            observation, reward, terminated, truncated, info = e.step(choice)
            trace.append((observation, reward, info["actions"], info["expert_plan"], e.teacher_reflection()))
        return trace

    first = episode(env, 11)
    assert episode(env, 11) == first
    assert episode(env, 12) != first
    other = ALFWorldEnv(num_scenes=SCENES_PER_TYPE, scene_dir=tmp_path, start_method="forkserver")
    try:
        assert episode(other, 11) == first
        assert other.engine_pid != env.engine_pid
    finally:
        other.close()


def test_invalid_actions_and_values(env):
    observation, info = env.reset(seed=0, options={"stage": "pick_and_place_simple"})
    before = info["actions"]
    index = env.max_actions - 1
    assert index >= len(before)
    observation, reward, terminated, truncated, info = env.step(np.int64(index))
    assert (reward, terminated, truncated, info["invalid_action"]) == (-0.1, False, False, True)
    assert info["actions"] == before and f"(invalid action {index})" in observation
    assert "To recover" in env.teacher_reflection()
    for bad in [1.5, "0", None, -1, env.max_actions, True, np.float32(1.0), np.array([1, 2])]:
        with pytest.raises(ValueError, match="action"):
            env.step(bad)


def test_stages_and_options(env):
    assert env.stages == STAGES and STAGES[-1] == "all"
    with pytest.raises(ValueError, match=r"Unknown curriculum stage 'hard'.*pick_and_place_simple.*all"):
        env.reset(options={"stage": "hard"})
    with pytest.raises(ValueError, match="Unknown reset option"):
        env.reset(options={"level": 1})
    with pytest.raises(ValueError, match="Unknown game"):
        env.reset(options={"game": "no/such/game"})
    for stage in STAGES[:-1]:
        _, info = env.reset(seed=1, options={"stage": stage})
        assert info["task_type"] == stage and info["game"] in env.game_ids(stage)
    assert len(env.game_ids("all")) == len(TASK_TYPES) * SCENES_PER_TYPE


def test_unknown_stage_in_constructor(engine_installed, tmp_path):
    with pytest.raises(ValueError, match="known stages: pick_and_place_simple"):
        ALFWorldEnv(stage="expert", scene_dir=tmp_path)


def test_v0_is_retired_with_a_pointer_to_v1():
    with pytest.raises(ValueError, match="ALFWorld-v0 is retired.*ReflectRL/ALFWorld-v1"):
        gym.make("ReflectRL/ALFWorld-v0")


def test_no_mistake_on_the_last_turn(env, monkeypatch):
    monkeypatch.setattr(env, "horizon", 2)
    _, info = env.reset(seed=4, options={"stage": "pick_and_place_simple"})
    _, _, _, _, info = env.step(info["teacher_action"])
    assert info["mistake_actions"] == []  # a mistake now would end the episode before any correction


def test_truncation_at_the_horizon(env, monkeypatch):
    monkeypatch.setattr(env, "horizon", 2)
    _, info = env.reset(seed=4, options={"stage": "pick_two_obj_and_place"})
    env.step(env.max_actions - 1)  # invalid indices: nothing happens
    _, reward, terminated, truncated, info = env.step(env.max_actions - 1)
    assert (terminated, truncated, info["success"], reward) == (False, True, False, -0.1)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_async_methods_overlap_two_engines(env, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # the engine must not write to the home folder (alfworld would)
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    other = ALFWorldEnv(num_scenes=SCENES_PER_TYPE, max_actions=4, history_length=1)  # scenes in a temporary folder
    try:
        env.reset_async(seed=5)
        other.reset_async(seed=5)
        (obs_a, info_a), (obs_b, info_b) = env.reset_wait(), other.reset_wait()
        assert obs_a == obs_b and info_a["game"] == info_b["game"]
        assert len(info_b["actions"]) <= 4 and info_b["expert_plan"][0] in info_b["actions"]
        env.step_async(info_a["teacher_action"])
        other.step_async(info_b["teacher_action"])
        result_a, result_b = env.step_wait(), other.step_wait()
        assert result_a[4]["expert_plan"] == result_b[4]["expert_plan"]
        with pytest.raises(RuntimeError, match="step_async"):
            env.step_wait()
        pid, scene_dir = other.engine_pid, other.scene_dir
        assert scene_dir.is_dir() and list(scene_dir.rglob("game.tw-pddl"))
    finally:
        other.close()
    other.close()  # closing twice is fine
    assert not _alive(pid) and not scene_dir.exists()
    assert not list(tmp_path.iterdir())  # nothing was written to the (fake) home folder


def test_data_set_games_are_played_and_the_tree_is_left_alone(engine_installed, tmp_path):
    tree = make_data_tree(tmp_path / "alfworld_data")
    before = tree_files(tree)
    env = ALFWorldEnv(
        data_path=tree / "train",
        object_types=["Tomato"],
        receptacle_types=["Microwave"],
        stage="pick_and_place_simple",
        scene_dir=tmp_path / "build",
    )
    try:
        assert [g.receptacle_class for g in env.games] == ["Microwave"]
        rewards, terminated, _, infos = play_oracle(env, env.game_ids()[0])
        assert terminated and infos[-1]["success"] and "microwave" in infos[0]["task"]
        with pytest.raises(ValueError, match="stage 'pick_heat_then_place_in_recep' has no games"):
            env.reset(options={"stage": "pick_heat_then_place_in_recep"})
    finally:
        env.close()
    assert tree_files(tree) == before  # game files are built in scene_dir, not in the data tree
    assert list((tmp_path / "build").rglob("game.tw-pddl"))


def test_data_path_from_the_environment_variable(engine_installed, tmp_path, monkeypatch):
    make_data_tree(tmp_path / "alfworld_data")
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path / "alfworld_data"))
    env = ALFWorldEnv(data_path="$ALFWORLD_DATA", object_types=["Mug"], scene_dir=tmp_path / "build")
    try:
        assert [g.object_class for g in env.games] == ["Mug"]
    finally:
        env.close()


def test_malformed_scene_gives_a_clear_error(engine_installed, tmp_path):
    tree = make_broken_tree(tmp_path)
    env = ALFWorldEnv(data_path=tree, scene_dir=tmp_path / "build")
    try:
        for _ in range(2):  # the failed build leaves no game file behind: the second reset fails the same way
            with pytest.raises(GameDataError, match=r"cannot load the game .*/trial_\w+/game\.tw-pddl.*initial_state"):
                env.reset(seed=0)
        assert not list((tmp_path / "build").rglob("game.tw-pddl"))
        assert not any(name.endswith("game.tw-pddl") for name in tree_files(tree))
    finally:
        env.close()


def test_catalog_and_goals_match_the_wheel(engine_installed, tmp_path, monkeypatch):
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path))  # importing alfworld would write to ~/.cache otherwise
    constants = pytest.importorskip("alfworld.gen.constants")
    goal_library = pytest.importorskip("alfworld.gen.goal_library")
    for receptacle, contents in catalog.CAN_CONTAIN.items():
        assert contents == set(constants.VAL_RECEPTACLE_OBJECTS[receptacle]) & set(catalog.OBJECT_CLASSES), receptacle
    for name, table in (
        ("Cleanable", catalog.CLEANABLE),
        ("Heatable", catalog.HEATABLE),
        ("Coolable", catalog.COOLABLE),
    ):
        assert table == set(constants.VAL_ACTION_OBJECTS[name]) & set(catalog.OBJECT_CLASSES)
    assert catalog.OPENABLE <= set(constants.OPENABLE_CLASS_LIST)
    assert catalog.RECEPTACLE_OBJECTS <= set(constants.MOVABLE_RECEPTACLES)

    def normal(text):
        return " ".join(text.replace("#", "-").split())

    for task_type in TASK_TYPES:
        assert normal(GOALS[task_type]) == normal(goal_library.gdict[task_type]["pddl"]), task_type


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
