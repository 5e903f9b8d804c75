"""ALFWorld: household tasks in ALFWorld's real text engine, as a Reflect-RL environment (``ReflectRL/ALFWorld-v0``).

The engine is the ``alfworld`` wheel's (TextWorld's PDDL engine with the fast-downward planner), an optional extra:
``pip install -e '.[alfworld]'``. Importing this package does not import ``alfworld``: only the engine's worker
process does (see :mod:`environments.alfworld.worker`). Games come from a seeded scene generator
(:mod:`environments.alfworld.scenes`) or from the ALFWorld data set (:mod:`environments.alfworld.dataset`).

Example:
    >>> import gymnasium as gym
    >>> import environments
    >>> env = gym.make("ReflectRL/ALFWorld-v0", num_scenes=4)
    >>> observation, info = env.reset(seed=0, options={"stage": "pick_and_place_simple"})
    >>> observation.startswith("Your task is to:")
    True
    >>> env.close()

"""

from environments.alfworld.dataset import Game, GameDataError, build_game_file, find_games, generated_games
from environments.alfworld.dependencies import INSTALL_HINT, missing_modules, require_alfworld
from environments.alfworld.engine import EngineError, EngineProcess
from environments.alfworld.env import ALFWorldEnv
from environments.alfworld.scenes import Scene, SceneConstraintError, generate_scene, scene_seed, write_scene
from environments.alfworld.task_types import DEFAULT_STAGE, STAGES, TASK_TYPES
from environments.alfworld.teacher import RECOMMENDATION, TeacherState, mistake_actions, parse_command, reflect

__all__ = [
    "DEFAULT_STAGE",
    "INSTALL_HINT",
    "RECOMMENDATION",
    "STAGES",
    "TASK_TYPES",
    "ALFWorldEnv",
    "EngineError",
    "EngineProcess",
    "Game",
    "GameDataError",
    "Scene",
    "SceneConstraintError",
    "TeacherState",
    "build_game_file",
    "find_games",
    "generate_scene",
    "generated_games",
    "mistake_actions",
    "missing_modules",
    "parse_command",
    "reflect",
    "require_alfworld",
    "scene_seed",
    "write_scene",
]
