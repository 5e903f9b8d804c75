"""AutoExplore: find the file that answers a question by exploring a real, read-only directory tree.

The Reflect-RL paper's benchmark as a gymnasium environment (``ReflectRL/AutoExplore-v0``), with an offline task
generator over any directory tree (by default the source trees of installed packages), splits by repository, a
shortest-path oracle and a rule-based teacher. ``ReflectRL/AutoExplore-v1`` (:class:`AutoExploreV1Env`, used by
the configs) shows a file's evidence when it is read, remembers what was explored, and has a teacher that searches
with only what the observations showed.

Example:
    >>> import gymnasium as gym
    >>> import environments
    >>> from environments.auto_explore import generate_tasks, package_root
    >>> tasks = generate_tasks(package_root("gymnasium"), seed=0, max_tasks=20)
    >>> env = gym.make("ReflectRL/AutoExplore-v0", tasks=tasks)
    >>> observation, info = env.reset(seed=0, options={"stage": "1"})
    >>> info["actions"][info["oracle_action"]].split()[0] in ("cd", "id")
    True

"""

from environments.auto_explore.actions import Action, DirectoryView, directory_view, next_step, route, shown_entries
from environments.auto_explore.corpus import DEFAULT_SPLIT_PACKAGES, default_split_roots, package_root
from environments.auto_explore.env import AutoExploreEnv
from environments.auto_explore.env_v1 import DEFAULT_TASKS, AutoExploreV1Env
from environments.auto_explore.generation import KINDS, generate_from_roots, generate_tasks, make_question
from environments.auto_explore.sandbox import Listing, Sandbox, SandboxError
from environments.auto_explore.splits import build_splits, split_roots
from environments.auto_explore.tasks import (
    STAGES,
    Task,
    TaskFileError,
    check_task,
    load_tasks,
    save_tasks,
    tasks_for_stage,
)
from environments.auto_explore.teacher import TeacherState, reflect

__all__ = [
    "DEFAULT_SPLIT_PACKAGES",
    "KINDS",
    "STAGES",
    "Action",
    "AutoExploreEnv",
    "AutoExploreV1Env",
    "DEFAULT_TASKS",
    "DirectoryView",
    "Listing",
    "Sandbox",
    "SandboxError",
    "Task",
    "TaskFileError",
    "TeacherState",
    "build_splits",
    "check_task",
    "default_split_roots",
    "directory_view",
    "generate_from_roots",
    "generate_tasks",
    "load_tasks",
    "make_question",
    "next_step",
    "package_root",
    "reflect",
    "route",
    "save_tasks",
    "shown_entries",
    "split_roots",
    "tasks_for_stage",
]
