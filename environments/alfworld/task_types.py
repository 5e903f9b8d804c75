"""ALFWorld's six task types, the curriculum stages built on them and the goal of each in the dataset's PDDL.

The names are ALFWorld's (``traj_data.json`` field ``task_type``, the first part of a game folder's name). The goal
texts are those of the ``alfworld`` wheel's ``alfworld.gen.goal_library`` written the way the dataset's
``initial_state.pddl`` files spell them (``-`` for the wheel's ``#``); a test checks that they stay equal.
"""

from __future__ import annotations

#: ALFWorld's task types, easiest first (the order of the curriculum).
TASK_TYPES: tuple[str, ...] = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
#: Curriculum stages: one per task type, then ``all``.
STAGES: tuple[str, ...] = (*TASK_TYPES, "all")
#: Stage used when none is given.
DEFAULT_STAGE = "all"


def check_stage(stage: str) -> str:
    """Return ``stage`` if it is a known stage.

    Raises:
        ValueError: naming the known stages.
    """
    if stage not in STAGES:
        raise ValueError(f"Unknown ALFWorld stage {stage!r}; known stages: {', '.join(STAGES)}.")
    return stage


def task_types_of_stage(stage: str) -> tuple[str, ...]:
    """The task types a stage plays (``all``: every task type)."""
    return TASK_TYPES if check_stage(stage) == "all" else (stage,)


def check_task_types(task_types: object) -> tuple[str, ...]:
    """Return ``task_types`` as a tuple of known task types.

    Raises:
        ValueError: for an empty list or an unknown name.
    """
    if isinstance(task_types, str):
        task_types = (task_types,)
    names = tuple(str(name) for name in task_types)  # type: ignore[union-attr]
    if not names:
        raise ValueError(f"task_types is empty; choose some of {', '.join(TASK_TYPES)}.")
    unknown = [name for name in names if name not in TASK_TYPES]
    if unknown:
        raise ValueError(f"Unknown ALFWorld task type(s) {unknown}; known task types: {', '.join(TASK_TYPES)}.")
    return names


_PLACE_GOAL = """
        (:goal
            (and
                (exists (?r - receptacle)
                    (exists (?o - object)
                        (and
{conditions}
                        )
                    )
                )
            )
        )
    )
"""


def _place_goal(*conditions: str) -> str:
    return _PLACE_GOAL.format(conditions="\n".join(f"                            {c}" for c in conditions))


#: The ``(:goal ...)`` section (with the closing parenthesis of the problem) of each task type; ``{obj}``,
#: ``{recep}`` and ``{toggle}`` are ALFRED class names such as ``Tomato``, ``CounterTop``, ``DeskLamp``.
GOALS: dict[str, str] = {
    "pick_and_place_simple": _place_goal(
        "(inReceptacle ?o ?r)", "(objectType ?o {obj}Type)", "(receptacleType ?r {recep}Type)"
    ),
    "pick_clean_then_place_in_recep": _place_goal(
        "(cleanable ?o)",
        "(objectType ?o {obj}Type)",
        "(receptacleType ?r {recep}Type)",
        "(isClean ?o)",
        "(inReceptacle ?o ?r)",
    ),
    "pick_heat_then_place_in_recep": _place_goal(
        "(heatable ?o)",
        "(objectType ?o {obj}Type)",
        "(receptacleType ?r {recep}Type)",
        "(isHot ?o)",
        "(inReceptacle ?o ?r)",
    ),
    "pick_cool_then_place_in_recep": _place_goal(
        "(coolable ?o)",
        "(objectType ?o {obj}Type)",
        "(receptacleType ?r {recep}Type)",
        "(isCool ?o)",
        "(inReceptacle ?o ?r)",
    ),
    "pick_two_obj_and_place": """
                (:goal
                    (and
                        (exists (?r - receptacle)
                            (exists (?o1 - object)
                                (and
                                    (objectType ?o1 {obj}Type)
                                    (receptacleType ?r {recep}Type)
                                    (inReceptacle ?o1 ?r)
                                    (exists (?o2 - object)
                                        (and
                                            (not (= ?o1 ?o2))
                                            (objectType ?o2 {obj}Type)
                                            (receptacleType ?r {recep}Type)
                                            (inReceptacle ?o2 ?r)
                                        )
                                    )
                                )
                            )
                        )
                    )
                )
            )
""",
    "look_at_obj_in_light": """
        (:goal
             (and
                 (exists (?ot - object
                          ?r - receptacle
                          ?a - agent
                          ?l - location)
                     (and
                         (objectType ?ot {toggle}Type)
                         (toggleable ?ot)
                         (isToggled ?ot)
                         (receptacleAtLocation ?r ?l)
                         (atLocation ?a ?l)
                         (inReceptacle ?ot ?r)
                     )
                 )
                 (exists (?o - object
                          ?a - agent)
                     (and
                         (objectType ?o {obj}Type)
                         (holds ?a ?o)
                     )
                 )
             )
        )
    )
""",
}
