"""A seeded generator of small ALFWorld games, written in the format of the ALFWorld data set.

A :class:`Scene` is one room: a few receptacles (each at its own location), the task's object(s), a few distractor
objects and the agent's start. :func:`write_scene` writes it as a data-set trial folder::

    <root>/pick_heat_then_place_in_recep-Tomato-None-CounterTop-6/trial_3f2a9c1d/
        initial_state.pddl   the PDDL problem, spelled like the data set's (mangled ALFRED ids, ``- type``)
        traj_data.json       the fields ALFWorld's loaders read: task_type, pddl_params, scene, turk_annotations

The game file (``game.tw-pddl``) is built from these by :func:`environments.alfworld.dataset.build_game_file` with
the PDDL domain and grammar the ``alfworld`` wheel ships. Everything here is pure Python: generating and writing a
scene does not import ``alfworld``.

Example:
    >>> scene = generate_scene("pick_heat_then_place_in_recep", seed=0)
    >>> scene.object_class in catalog.HEATABLE
    True

"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from environments.alfworld import catalog
from environments.alfworld.task_types import GOALS, TASK_TYPES

#: Bounds of ``num_receptacles`` (the task needs up to four; more makes resets slower, ~linearly).
MIN_RECEPTACLES, MAX_RECEPTACLES = 4, 24
#: Format version of generated scenes (in ``traj_data.json``); bump it when the generator changes its output.
GENERATOR_VERSION = 1

_MANGLE = {"-": "_minus_", "#": "-", "|": "_bar_", "+": "_plus_", ".": "_dot_", ",": "_comma_"}
_MANGLE_RE = re.compile("|".join(re.escape(key) for key in _MANGLE))


class SceneConstraintError(ValueError):
    """No scene of a task type meets the object / receptacle restrictions."""


def mangle(alfred_id: str) -> str:
    """Spell an ALFRED id the way the data set's PDDL does (``Tomato|+01.20|...`` -> ``Tomato_bar__plus_01...``)."""
    return _MANGLE_RE.sub(lambda match: _MANGLE[match.group(0)], alfred_id)


@dataclass(frozen=True)
class Receptacle:
    """A receptacle of a scene: its PDDL id, ALFRED class and location."""

    id: str
    cls: str
    location: str


@dataclass(frozen=True)
class Item:
    """An object of a scene: its PDDL id, ALFRED class and the id of the receptacle it is in."""

    id: str
    cls: str
    receptacle: str


@dataclass(frozen=True)
class Scene:
    """One generated ALFWorld game.

    Attributes:
        task_type: One of :data:`~environments.alfworld.task_types.TASK_TYPES`.
        object_class: The class of the object the task is about (``Tomato``).
        receptacle_class: Where it must end up (``CounterTop``); empty for ``look_at_obj_in_light``.
        toggle_class: The lamp of ``look_at_obj_in_light`` (``DeskLamp``), else empty.
        seed: The generator seed.
        receptacles: The room's receptacles.
        items: The room's objects (the task's first).
        agent_location: Where the agent starts (a location with no receptacle: "the middle of a room").

    """

    task_type: str
    object_class: str
    receptacle_class: str
    toggle_class: str
    seed: int
    receptacles: tuple[Receptacle, ...]
    items: tuple[Item, ...]
    agent_location: str

    @property
    def parent_name(self) -> str:
        """The last class in the data set's folder name: the goal receptacle, or the lamp for look-at tasks."""
        return self.receptacle_class or self.toggle_class

    @property
    def name(self) -> str:
        """The trial folder below the scene root, named as in the data set (see the module docstring)."""
        digest = hashlib.sha256(self.problem_pddl().encode()).hexdigest()[:8]
        return f"{self.task_type}-{self.object_class}-None-{self.parent_name}-{len(self.receptacles)}/trial_{digest}"

    def problem_pddl(self) -> str:
        """The PDDL problem in the data set's ``initial_state.pddl`` format."""
        object_classes = sorted({item.cls for item in self.items} | {"Knife", "ButterKnife"})
        receptacle_classes = sorted({r.cls for r in self.receptacles} | set(catalog.APPLIANCE.values()))
        if self.receptacle_class:
            receptacle_classes = sorted(set(receptacle_classes) | {self.receptacle_class})
        locations = [r.location for r in self.receptacles] + [self.agent_location]
        indent = "\n        "
        objects = ["agent1 - agent"]
        objects += [f"{cls} - object" for cls in object_classes]
        objects += [f"{cls}Type - otype" for cls in object_classes]
        objects += [f"{cls}Type - rtype" for cls in receptacle_classes]
        objects += [f"{item.id} - object" for item in self.items]
        objects += [f"{r.id} - receptacle" for r in self.receptacles]
        objects += [f"{location} - location" for location in locations]

        where = {r.id: r for r in self.receptacles}
        scene_receptacle_classes = sorted({r.cls for r in self.receptacles})
        scene_object_classes = sorted({item.cls for item in self.items if item.cls != catalog.LAMP_CLASS})
        init = [f"(receptacleType {r.id} {r.cls}Type)" for r in self.receptacles]
        init += [f"(objectType {item.id} {item.cls}Type)" for item in self.items]
        init += [
            f"(canContain {r}Type {o}Type)"
            for r in scene_receptacle_classes
            for o in scene_object_classes
            if o in catalog.CAN_CONTAIN[r]
        ]
        movable = [item for item in self.items if item.cls != catalog.LAMP_CLASS]
        init += [f"(pickupable {item.id})" for item in movable]
        init += [f"(isReceptacleObject {item.id})" for item in movable if item.cls in catalog.RECEPTACLE_OBJECTS]
        init += [f"(openable {r.id})" for r in self.receptacles if r.cls in catalog.OPENABLE]
        init.append(f"(atLocation agent1 {self.agent_location})")
        for predicate, classes in (
            ("cleanable", catalog.CLEANABLE),
            ("heatable", catalog.HEATABLE),
            ("coolable", catalog.COOLABLE),
            ("sliceable", catalog.SLICEABLE),
        ):
            init += [f"({predicate} {item.id})" for item in movable if item.cls in classes]
        init += [f"(toggleable {item.id})" for item in self.items if item.cls == catalog.LAMP_CLASS]
        init += [f"(inReceptacle {item.id} {item.receptacle})" for item in self.items]
        init += [f"(receptacleAtLocation {r.id} {r.location})" for r in self.receptacles]
        init += [f"(objectAtLocation {item.id} {where[item.receptacle].location})" for item in self.items]
        goal = GOALS[self.task_type].format(
            obj=self.object_class, recep=self.receptacle_class, toggle=self.toggle_class
        )
        return (
            f"\n(define (problem plan_generated_{self.seed})\n(:domain alfred)\n(:objects\n"
            f"{indent.join(objects)}\n        )\n    \n\n(:init\n\n"
            f"        {indent.join(init)}\n        )\n    \n{goal}"
        )

    def traj_data(self) -> dict[str, Any]:
        """The ``traj_data.json`` content: the fields ALFWorld's loaders and experts read, and the generator's own."""
        return {
            "task_type": self.task_type,
            "task_id": f"generated_{self.seed}",
            "pddl_params": {
                "object_target": self.object_class,
                "parent_target": self.receptacle_class,
                "toggle_target": self.toggle_class,
                "mrecep_target": "",
                "object_sliced": False,
            },
            "scene": {"floor_plan": "GeneratedRoom", "scene_num": 0, "random_seed": self.seed},
            "turk_annotations": {"anns": []},
            "generator": {
                "name": "reflect-rl",
                "version": GENERATOR_VERSION,
                "seed": self.seed,
                "num_receptacles": len(self.receptacles),
                "num_objects": len(self.items),
            },
        }


def scene_seed(base_seed: int, task_type: str, index: int) -> int:
    """The generator seed of scene ``index`` of a pool (stable across processes and Python versions)."""
    return zlib.crc32(f"reflect-rl/alfworld/{int(base_seed)}/{task_type}/{int(index)}".encode())


class _IdMaker:
    """Unique ALFRED-style ids (``Tomato|+01.20|+00.90|-00.35``) and locations (``loc|3|-2|1|45``) from an rng."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _coordinate(self) -> str:
        value = self.rng.randint(-300, 300) / 100
        return f"{value:+06.2f}"

    def object_id(self, cls: str) -> str:
        while True:
            alfred_id = f"{cls}|{self._coordinate()}|{self._coordinate()}|{self._coordinate()}"
            if cls == "SinkBasin":  # the data set's sink basins are "Sink|x|y|z|SinkBasin" ("sinkbasin 1")
                alfred_id = f"Sink|{self._coordinate()}|{self._coordinate()}|{self._coordinate()}|SinkBasin"
            if alfred_id not in self.used:
                self.used.add(alfred_id)
                return mangle(alfred_id)

    def location(self) -> str:
        while True:
            r = self.rng
            alfred_id = (
                f"loc|{r.randint(-12, 12)}|{r.randint(-12, 12)}|{r.randint(0, 3)}|{r.choice((0, 15, 30, 45, 60))}"
            )
            if alfred_id not in self.used:
                self.used.add(alfred_id)
                return mangle(alfred_id)


def _check_choices(name: str, given: Sequence[str] | None, known: Sequence[str]) -> tuple[str, ...] | None:
    if given is None:
        return None
    if isinstance(given, str):
        given = (given,)
    lowered = {k.lower(): k for k in known}
    names = []
    for value in given:
        if str(value).lower() not in lowered:
            raise ValueError(f"Unknown {name} {value!r} for generated scenes; known: {', '.join(sorted(known))}.")
        names.append(lowered[str(value).lower()])
    return tuple(names)


def generate_scene(
    task_type: str,
    seed: int,
    num_receptacles: int = 6,
    num_distractors: int = 3,
    object_classes: Sequence[str] | None = None,
    receptacle_classes: Sequence[str] | None = None,
) -> Scene:
    """Generate one random, solvable room for ``task_type`` (same arguments, same scene).

    Args:
        task_type: One of :data:`~environments.alfworld.task_types.TASK_TYPES`.
        seed: The generator seed.
        num_receptacles: Receptacles in the room (:data:`MIN_RECEPTACLES` to :data:`MAX_RECEPTACLES`).
        num_distractors: Objects besides the task's (each of another class, in a receptacle that can hold it).
        object_classes: Restrict the task's object to these ALFRED classes (e.g. ``["Tomato"]``).
        receptacle_classes: Restrict the goal receptacle to these classes (e.g. ``["Microwave"]``).

    Raises:
        ValueError: for an unknown task type or class or bad counts.
        SceneConstraintError: for restrictions that no scene of this task type meets (a ``ValueError``).

    """
    if task_type not in TASK_TYPES:
        raise ValueError(f"Unknown ALFWorld task type {task_type!r}; known task types: {', '.join(TASK_TYPES)}.")
    if not MIN_RECEPTACLES <= int(num_receptacles) <= MAX_RECEPTACLES:
        raise ValueError(f"num_receptacles must be in [{MIN_RECEPTACLES}, {MAX_RECEPTACLES}], got {num_receptacles}.")
    if not 0 <= int(num_distractors) <= len(catalog.OBJECT_CLASSES) - 1:
        raise ValueError(f"num_distractors must be in [0, {len(catalog.OBJECT_CLASSES) - 1}], got {num_distractors}.")
    objects_allowed = _check_choices("object class", object_classes, catalog.OBJECT_CLASSES)
    receptacles_allowed = _check_choices("receptacle class", receptacle_classes, tuple(catalog.CAN_CONTAIN))
    rng = random.Random(int(seed))
    look_at = task_type == "look_at_obj_in_light"
    pool = catalog.BEDROOM if look_at else catalog.KITCHEN
    appliance = catalog.APPLIANCE.get(task_type)

    # the task: an object, where it starts and where it must go
    options = []
    for obj in catalog.TARGETS[task_type]:
        if objects_allowed is not None and obj not in objects_allowed:
            continue
        holders = [r for r in catalog.receptacles_for(obj, pool) if r != appliance]
        if look_at:
            if receptacles_allowed is None:
                options += [(obj, start, "") for start in holders]
            continue
        for goal in holders:
            if receptacles_allowed is not None and goal not in receptacles_allowed:
                continue
            options += [(obj, start, goal) for start in holders if start != goal]
    if not options:
        raise SceneConstraintError(
            f"No {task_type} scene has an object among {list(objects_allowed or [])} and a goal receptacle among "
            f"{list(receptacles_allowed or [])}; relax object_types/receptacle_types."
        )
    obj, start, goal = rng.choice(options)
    lamp_holder = rng.choice(catalog.LAMP_RECEPTACLES) if look_at else None

    # the room
    ids = _IdMaker(rng)
    required = [start] + [cls for cls in (goal, appliance, lamp_holder) if cls]
    if len(required) > int(num_receptacles):
        raise ValueError(f"A {task_type} scene needs at least {len(required)} receptacles, got {num_receptacles}.")
    classes = list(required)
    while len(classes) < int(num_receptacles):
        choices = [c for c in pool if c in catalog.REPEATABLE or c not in classes]
        classes.append(rng.choice(choices))
    receptacles = [Receptacle(ids.object_id(cls), cls, ids.location()) for cls in classes]
    start_receptacle = receptacles[0]
    lamp_receptacle = receptacles[classes.index(lamp_holder, 1)] if lamp_holder else None

    # the objects
    items = [Item(ids.object_id(obj), obj, start_receptacle.id)]
    if task_type == "pick_two_obj_and_place":
        holders = [r for r in receptacles if obj in catalog.CAN_CONTAIN[r.cls] and r.cls not in (goal, appliance)]
        items.append(Item(ids.object_id(obj), obj, rng.choice(holders).id))
    if lamp_receptacle is not None:
        items.append(Item(ids.object_id(catalog.LAMP_CLASS), catalog.LAMP_CLASS, lamp_receptacle.id))
    distractors = [c for c in catalog.OBJECT_CLASSES if c != obj]
    rng.shuffle(distractors)
    placed = 0
    for cls in distractors:
        if placed >= int(num_distractors):
            break
        holders = [r for r in receptacles if cls in catalog.CAN_CONTAIN[r.cls]]
        if holders:
            items.append(Item(ids.object_id(cls), cls, rng.choice(holders).id))
            placed += 1
    rng.shuffle(receptacles)
    return Scene(
        task_type=task_type,
        object_class=obj,
        receptacle_class=goal,
        toggle_class=catalog.LAMP_CLASS if look_at else "",
        seed=int(seed),
        receptacles=tuple(receptacles),
        items=tuple(items),
        agent_location=ids.location(),
    )


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a concurrent reader sees the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_scene(scene: Scene, root: str | os.PathLike[str]) -> Path:
    """Write ``scene`` as a data-set trial folder under ``root`` and return the folder (idempotent, atomic files).

    Raises:
        OSError: when ``root`` cannot be written.
    """
    trial = Path(root) / scene.name
    trial.mkdir(parents=True, exist_ok=True)
    problem = trial / "initial_state.pddl"
    if not problem.is_file():
        _write_atomic(trial / "traj_data.json", json.dumps(scene.traj_data(), indent=2))
        _write_atomic(problem, scene.problem_pddl())
    return trial
