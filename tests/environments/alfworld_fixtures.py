"""Small ALFWorld data trees for the ALFWorld tests: generated scenes laid out like the data set."""

from __future__ import annotations

import json
from pathlib import Path

from environments.alfworld import generate_scene, write_scene


def make_data_tree(root: Path, split: str = "train") -> Path:
    """A ``json_2.1.1/<split>`` tree with two tomato scenes (goal: microwave and another), a mug scene, one trial
    marked unsolvable and one ``movable`` trial (both must be skipped). Returns the ``json_2.1.1`` folder."""
    tree = root / "json_2.1.1"
    out = tree / split
    write_scene(
        generate_scene("pick_and_place_simple", 1, object_classes=["Tomato"], receptacle_classes=["Microwave"]), out
    )
    write_scene(
        generate_scene("pick_and_place_simple", 2, object_classes=["Tomato"], receptacle_classes=["Fridge"]), out
    )
    write_scene(generate_scene("pick_and_place_simple", 3, object_classes=["Mug"]), out)
    unsolvable = write_scene(
        generate_scene("pick_and_place_simple", 4, object_classes=["Tomato"], receptacle_classes=["Microwave"]), out
    )
    (unsolvable / "game.tw-pddl").write_text(json.dumps({"solvable": False}))
    movable = out / "pick_and_place_with_movable_recep-Tomato-Bowl-Microwave-1" / "trial_T1"
    movable.mkdir(parents=True)
    (movable / "traj_data.json").write_text("{}")
    return tree


def make_broken_tree(root: Path) -> Path:
    """A tree with one trial whose PDDL problem is not PDDL."""
    trial = write_scene(generate_scene("pick_and_place_simple", 5), root / "json_2.1.1" / "train")
    (trial / "initial_state.pddl").write_text("(define (problem broken) (:domain alfred) (:objects agent1 - agent\n")
    return root / "json_2.1.1"


def tree_files(root: Path) -> set[str]:
    """Every file below ``root``, relative."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
