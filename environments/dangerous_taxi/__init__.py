"""DangerousTaxi: gymnasium's Taxi-v4 as a Reflect-RL text environment, with its BFS oracle and rule-based teacher.

Registered as ``ReflectRL/DangerousTaxi-v0`` when :mod:`environments` is imported.
"""

from environments.dangerous_taxi.dynamics import ACTION_TEXTS, LOCATION_NAMES
from environments.dangerous_taxi.env import DangerousTaxiEnv
from environments.dangerous_taxi.oracle import (
    STAGES,
    distance_to_goal,
    is_goal,
    optimal_actions,
    oracle_action,
    oracle_path,
)
from environments.dangerous_taxi.render import OBSERVATION_FORMATS, compact_text, grid_text
from environments.dangerous_taxi.teacher import is_wrong_action, recommended_action, teacher_reflection

__all__ = [
    "ACTION_TEXTS",
    "LOCATION_NAMES",
    "OBSERVATION_FORMATS",
    "STAGES",
    "DangerousTaxiEnv",
    "compact_text",
    "distance_to_goal",
    "grid_text",
    "is_goal",
    "is_wrong_action",
    "optimal_actions",
    "oracle_action",
    "oracle_path",
    "recommended_action",
    "teacher_reflection",
]
