"""Gymnasium text environments that follow the Reflect-RL contract, registered under ``ReflectRL/`` on import.

Example:
    >>> import gymnasium as gym
    >>> import environments  # registers ReflectRL/...
    >>> env = gym.make("ReflectRL/DangerousTaxi-v0")
    >>> observation, info = env.reset(seed=0, options={"stage": "pickup"})
    >>> info["actions"][info["oracle_action"]] in info["actions"]
    True
"""

from environments.base import OBSERVATION_CHARSET, TextEnv, to_observation_text, validate_action
from environments.check import ContractReport, check_environment, make_environment
from environments.registration import ENVIRONMENT_IDS, register_environments

register_environments()

__all__ = [
    "ENVIRONMENT_IDS",
    "OBSERVATION_CHARSET",
    "ContractReport",
    "TextEnv",
    "check_environment",
    "make_environment",
    "register_environments",
    "to_observation_text",
    "validate_action",
]
