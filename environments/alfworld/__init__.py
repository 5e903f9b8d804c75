"""ALFWorld: household tasks in ALFWorld's real text engine, as a Reflect-RL environment (``ReflectRL/ALFWorld-v1``).

The engine is the ``alfworld`` wheel's (TextWorld's PDDL engine with the fast-downward planner), an optional extra:
``pip install -e '.[alfworld]'``. Importing this package does not import ``alfworld``: only the engine's worker
process does (see :mod:`environments.alfworld.worker`). Games come from a seeded scene generator
(:mod:`environments.alfworld.scenes`) or from the ALFWorld data set (:mod:`environments.alfworld.dataset`).

``ReflectRL/ALFWorld-v0`` (the planner as teacher, no memory in the observation) is retired: making it raises an error
that names v1 (:func:`retired_v0`).

Example:
    >>> import gymnasium as gym
    >>> import environments
    >>> env = gym.make("ReflectRL/ALFWorld-v1", num_scenes=4)
    >>> observation, info = env.reset(seed=0, options={"stage": "pick_and_place_simple"})
    >>> observation.startswith("Your task is to:")
    True
    >>> env.close()

"""

from environments.alfworld.commands import Command, parse_command
from environments.alfworld.dataset import Game, GameDataError, build_game_file, find_games, generated_games
from environments.alfworld.dependencies import INSTALL_HINT, missing_modules, require_alfworld
from environments.alfworld.engine import EngineError, EngineProcess
from environments.alfworld.env import ALFWorldEnv
from environments.alfworld.memory import Memory
from environments.alfworld.scenes import Scene, SceneConstraintError, generate_scene, scene_seed, write_scene
from environments.alfworld.search import Goal, Move, choose, mistake_actions, search_order
from environments.alfworld.task_types import DEFAULT_STAGE, STAGES, TASK_TYPES
from environments.alfworld.teacher import RECOMMENDATION, TeacherState, reflect


def retired_v0(**kwargs: object) -> ALFWorldEnv:
    """The entry point of the retired ``ReflectRL/ALFWorld-v0``: always raises, naming its successor.

    Raises:
        ValueError: always; use ``ReflectRL/ALFWorld-v1``.
    """
    raise ValueError(
        "ReflectRL/ALFWorld-v0 is retired: its teacher read the planner's whole plan (its reflections said where "
        "unseen objects are). Use ReflectRL/ALFWorld-v1 (a searching teacher, memory in the observation; same "
        "constructor arguments except drop_commands, now drop_verbs, and the new memory_size)."
    )


__all__ = [
    "DEFAULT_STAGE",
    "INSTALL_HINT",
    "RECOMMENDATION",
    "STAGES",
    "TASK_TYPES",
    "ALFWorldEnv",
    "Command",
    "EngineError",
    "EngineProcess",
    "Game",
    "GameDataError",
    "Goal",
    "Memory",
    "Move",
    "Scene",
    "SceneConstraintError",
    "TeacherState",
    "build_game_file",
    "choose",
    "find_games",
    "generate_scene",
    "generated_games",
    "mistake_actions",
    "missing_modules",
    "parse_command",
    "reflect",
    "require_alfworld",
    "retired_v0",
    "scene_seed",
    "search_order",
    "write_scene",
]
