"""ALFWorld games on disk: finding them in a ``json_2.1.1`` tree and building a trial's ``game.tw-pddl``.

A trial folder of the ALFWorld data set holds ``traj_data.json``, ``initial_state.pddl`` and (after
``alfworld-download`` or ``alfworld-generate``) ``game.tw-pddl``: a JSON file with the PDDL domain, the text grammar
(with the task sentence filled in), the PDDL problem and whether the game is solvable. :func:`find_games` lists the
playable trials of a tree, filtered like ALFWorld's own loader (task types; no ``movable`` or ``Sliced`` trials;
no game known to be unsolvable) and by object and receptacle class. :func:`build_game_file` writes a game file from
a trial's PDDL problem; it imports ``alfworld`` and runs in the engine's worker process.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from environments.alfworld.scenes import Scene, SceneConstraintError, generate_scene, scene_seed
from environments.alfworld.task_types import TASK_TYPES

GAME_FILE = "game.tw-pddl"
TRAJ_FILE = "traj_data.json"
PROBLEM_FILE = "initial_state.pddl"
#: The data set's folder, below ``$ALFWORLD_DATA``.
DATASET_FOLDER = "json_2.1.1"


class GameDataError(ValueError):
    """A data path or game folder that cannot be played; the message names the path and the fix."""


@dataclass(frozen=True)
class Game:
    """One playable ALFWorld game.

    Attributes:
        game_id: Its trial folder relative to the data root (``<task>-<obj>-<mrecep>-<parent>-<scene>/trial_...``).
        task_type: ALFWorld task type.
        object_class: The class of the task's object (``Tomato``).
        receptacle_class: The goal receptacle's class, or the lamp's for look-at tasks.
        trial_dir: The folder with ``traj_data.json`` and ``initial_state.pddl``.
        game_file: The ``game.tw-pddl`` to play; it is built there on first use when it does not exist yet.
        scene: For a generated game, the scene to write into ``trial_dir`` on first use.

    """

    game_id: str
    task_type: str
    object_class: str
    receptacle_class: str
    trial_dir: str
    game_file: str
    scene: Scene | None = None


def resolve_data_path(data_path: str | os.PathLike[str]) -> Path:
    """Expand ``~`` and environment variables in ``data_path`` and find the ``json_2.1.1`` tree in it.

    ``$ALFWORLD_DATA``, ``$ALFWORLD_DATA/json_2.1.1`` and ``$ALFWORLD_DATA/json_2.1.1/train`` all work.

    Raises:
        GameDataError: for an unset variable or a path that is no directory.
    """
    text = os.path.expanduser(os.path.expandvars(os.fspath(data_path)))
    if "$" in text:
        raise GameDataError(
            f"ALFWorld data_path {os.fspath(data_path)!r} names an environment variable that is not set; set it "
            f"(e.g. export ALFWORLD_DATA=/path/to/alfworld-data) or pass the json_2.1.1 folder itself."
        )
    path = Path(text)
    if not path.is_dir():
        raise GameDataError(
            f"ALFWorld data_path {str(path)!r} is not a directory. Point it at the {DATASET_FOLDER} folder of the "
            f"ALFWorld data (alfworld-download puts it in $ALFWORLD_DATA/{DATASET_FOLDER}), or leave data_path unset "
            f"to play generated scenes."
        )
    if (path / DATASET_FOLDER).is_dir():
        path = path / DATASET_FOLDER
    return path


def _folder_fields(folder_name: str) -> tuple[str, str, str] | None:
    """``(task_type, object, parent)`` from a data-set folder name ``<task>-<obj>-<mrecep>-<parent>-<scene>``."""
    parts = folder_name.split("-")
    if len(parts) != 5 or parts[0] not in TASK_TYPES:
        return None
    return parts[0], parts[1], parts[3]


def _read_json(path: Path) -> Any:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise GameDataError(
            f"Cannot read {str(path)!r} ({error}); re-download or regenerate this trial, or delete its folder."
        ) from error


def _solvable(game_file: Path) -> bool | None:
    """The ``solvable`` flag of a game file (``None`` when it was never checked)."""
    data = _read_json(game_file)
    if not isinstance(data, dict):
        raise GameDataError(f"{str(game_file)!r} is not an ALFWorld game file (a JSON object); regenerate it.")
    return data.get("solvable")


def _matches(value: str, allowed: Sequence[str] | None) -> bool:
    return allowed is None or value.lower() in {a.lower() for a in allowed}


def find_games(
    data_path: str | os.PathLike[str],
    task_types: Sequence[str] = TASK_TYPES,
    object_classes: Sequence[str] | None = None,
    receptacle_classes: Sequence[str] | None = None,
    build_dir: str | os.PathLike[str] | None = None,
    max_games: int | None = None,
) -> list[Game]:
    """List the playable games of an ALFWorld data tree, sorted by id.

    Args:
        data_path: The ``json_2.1.1`` folder, a split of it (``.../json_2.1.1/valid_seen``) or ``$ALFWORLD_DATA``.
        task_types: Keep these task types.
        object_classes: Keep games whose object is one of these ALFRED classes (case-insensitive), e.g. ``["Tomato"]``.
        receptacle_classes: Keep games whose goal receptacle (lamp, for look-at tasks) is one of these classes.
        build_dir: Where game files missing from the tree are built (mirroring the tree); default: in the tree.
        max_games: Keep the first ``max_games`` games (by id).

    Raises:
        GameDataError: for a bad path, an unreadable ``traj_data.json`` or when no game is left, saying why.

    """
    root = resolve_data_path(data_path)
    wanted = set(task_types)
    games: list[Game] = []
    seen = skipped_unsolvable = skipped_no_game = 0
    for here, dirs, files in os.walk(root):
        dirs.sort()
        if TRAJ_FILE not in files:
            continue
        seen += 1
        trial = Path(here)
        if "movable" in here or "Sliced" in here:  # as ALFWorld's loader: not supported by the text engine
            continue
        fields = _folder_fields(trial.parent.name)
        if fields is None:
            data = _read_json(trial / TRAJ_FILE)
            params = data.get("pddl_params", {}) if isinstance(data, dict) else {}
            task_type = str(data.get("task_type", "")) if isinstance(data, dict) else ""
            parent = params.get("parent_target") or params.get("toggle_target") or ""
            fields = (task_type, str(params.get("object_target", "")), str(parent))
        task_type, obj, parent = fields
        if task_type not in wanted or not _matches(obj, object_classes) or not _matches(parent, receptacle_classes):
            continue
        game_id = trial.relative_to(root).as_posix()
        game_file = trial / GAME_FILE
        if game_file.is_file():
            if _solvable(game_file) is False:
                skipped_unsolvable += 1
                continue
        elif (trial / PROBLEM_FILE).is_file():
            if build_dir is not None:
                game_file = Path(build_dir) / game_id / GAME_FILE
        else:
            skipped_no_game += 1
            continue
        games.append(Game(game_id, task_type, obj, parent, str(trial), str(game_file)))
    if not games:
        raise GameDataError(
            f"No playable ALFWorld game under {str(root)!r}: {seen} trial folders ({TRAJ_FILE}), none of task types "
            f"{sorted(wanted)} with object in {object_classes} and receptacle in {receptacle_classes}"
            f"{f'; {skipped_unsolvable} skipped as unsolvable' if skipped_unsolvable else ''}"
            f"{f'; {skipped_no_game} without {GAME_FILE} or {PROBLEM_FILE}' if skipped_no_game else ''}. "
            f"Check data_path (the {DATASET_FOLDER} folder) and the filters."
        )
    games.sort(key=lambda game: game.game_id)
    return games[:max_games] if max_games is not None else games


def generated_games(
    scene_dir: str | os.PathLike[str],
    num_scenes: int,
    base_seed: int = 0,
    num_receptacles: int = 6,
    num_distractors: int = 3,
    object_classes: Sequence[str] | None = None,
    receptacle_classes: Sequence[str] | None = None,
    task_types: Sequence[str] = TASK_TYPES,
) -> list[Game]:
    """The pool of generated games: ``num_scenes`` seeded scenes per task type, to be written in ``scene_dir``.

    Nothing is written here: a scene is written (and its game file built) on first use. A task type that no scene
    meets the class restrictions for has no games.

    Raises:
        ValueError: for bad arguments or when no task type has a scene that meets the restrictions.
    """
    games: list[Game] = []
    reasons: list[str] = []
    for task_type in task_types:
        for index in range(num_scenes):
            try:
                scene = generate_scene(
                    task_type,
                    scene_seed(base_seed, task_type, index),
                    num_receptacles=num_receptacles,
                    num_distractors=num_distractors,
                    object_classes=object_classes,
                    receptacle_classes=receptacle_classes,
                )
            except SceneConstraintError as error:
                reasons.append(str(error))
                break
            trial = Path(scene_dir) / scene.name
            games.append(
                Game(
                    scene.name,
                    task_type,
                    scene.object_class,
                    scene.parent_name,
                    str(trial),
                    str(trial / GAME_FILE),
                    scene,
                )
            )
    if not games:
        raise ValueError(f"No generated ALFWorld scene meets the restrictions: {' '.join(reasons)}")
    return games


def build_game_file(trial_dir: str | os.PathLike[str], game_file: str | os.PathLike[str], seed: int) -> Path:
    """Write ``game_file`` for a trial folder: the wheel's PDDL domain and grammar with the task sentence, the problem.

    The task sentence is one of the templates of the task type, picked by ``alfworld``'s ``add_task_to_grammar``
    with Python's ``random`` seeded by ``seed`` (the global random state is restored afterwards). ``traj_data.json``
    is copied next to the game file, where ALFWorld's expert wrapper reads it. Solvability is not checked here (see
    the engine). Imports ``alfworld``: call it where ``ALFWORLD_DATA`` is set (the engine's worker process).

    Raises:
        GameDataError: for a missing or unreadable ``traj_data.json`` or ``initial_state.pddl``.
    """
    from alfworld.agents.utils.misc import add_task_to_grammar
    from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH

    trial = Path(trial_dir)
    traj_data = _read_json(trial / TRAJ_FILE)
    try:
        problem = (trial / PROBLEM_FILE).read_text()
    except OSError as error:
        raise GameDataError(
            f"Cannot read {str(trial / PROBLEM_FILE)!r} ({error}); the trial needs its PDDL problem to be played."
        ) from error
    state = random.getstate()
    try:
        random.seed(int(seed))
        grammar = add_task_to_grammar(Path(ALFRED_TWL2_PATH).read_text(), traj_data, rng=random.Random(int(seed)))
    except (KeyError, TypeError, AttributeError) as error:
        raise GameDataError(
            f"{str(trial / TRAJ_FILE)!r} lacks the fields ALFWorld needs (task_type, pddl_params with object_target, "
            f"parent_target, toggle_target, mrecep_target, object_sliced): {error!r}."
        ) from error
    finally:
        random.setstate(state)
    data = {
        "pddl_domain": Path(ALFRED_PDDL_PATH).read_text(),
        "grammar": grammar,
        "pddl_problem": problem,
        "solvable": None,
        "walkthrough": None,
    }
    out = Path(game_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, data)
    if out.parent.resolve() != trial.resolve():
        write_json_atomic(out.parent / TRAJ_FILE, traj_data)
    return out


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON so that a concurrent reader sees the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)
