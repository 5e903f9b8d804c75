"""Registration of the Reflect-RL environments with gymnasium."""

from __future__ import annotations

import gymnasium as gym

#: Registered id -> entry point.
ENVIRONMENT_IDS: dict[str, str] = {
    "ReflectRL/DangerousTaxi-v0": "environments.dangerous_taxi:DangerousTaxiEnv",
    "ReflectRL/AutoExplore-v0": "environments.auto_explore:AutoExploreEnv",
    "ReflectRL/AutoExplore-v1": "environments.auto_explore:AutoExploreV1Env",
    # imported when made, never on registration: the ALFWorld engine is an optional extra
    "ReflectRL/ALFWorld-v1": "environments.alfworld:ALFWorldEnv",
    "ReflectRL/ALFWorld-v0": "environments.alfworld:retired_v0",  # raises, naming v1
}


def register_environments() -> None:
    """Register every id of :data:`ENVIRONMENT_IDS` with gymnasium (idempotent; ``import environments`` calls it).

    Example:
        >>> register_environments()
        >>> "ReflectRL/DangerousTaxi-v0" in gym.registry
        True
        >>> env = gym.make("ReflectRL/DangerousTaxi-v0", stage="pickup")
    """
    for env_id, entry_point in ENVIRONMENT_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point)
