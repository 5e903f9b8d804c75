"""The small part of ALFRED's world the scene generator builds rooms from: receptacles, objects and their properties.

Every table is a subset of the ``alfworld`` wheel's ``alfworld.gen.constants`` (``VAL_RECEPTACLE_OBJECTS``,
``VAL_ACTION_OBJECTS``, ``OPENABLE_CLASS_LIST``) restricted to the classes below; a test checks that they agree.
Names are ALFRED class names (``CounterTop``, ``Tomato``); the PDDL types are the names with ``Type`` appended.
"""

from __future__ import annotations


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Object classes a scene may hold (``DeskLamp`` too, but only as the lamp of a ``look_at_obj_in_light`` task).
OBJECT_CLASSES: tuple[str, ...] = tuple(
    """Tomato Apple Potato Egg Bread Lettuce Mug Cup Bowl Plate Pan Pot Fork Spoon Knife Spatula Book Pencil Pen
    CellPhone KeyChain CreditCard Vase SoapBar Cloth DishSponge AlarmClock CD Watch WineBottle Kettle""".split()
)
#: The lamp of ``look_at_obj_in_light`` (toggleable, not pickupable).
LAMP_CLASS = "DeskLamp"

_TABLE_TOP = _names(
    """AlarmClock Apple Book Bowl Bread CD CellPhone Cloth CreditCard Cup DishSponge Egg Fork Kettle KeyChain Knife
    Lettuce Mug Pan Pen Pencil Plate Pot Potato SoapBar Spatula Spoon Tomato Vase Watch WineBottle"""
)
#: Receptacle class -> the object classes it can contain (ALFRED's ``canContain``).
CAN_CONTAIN: dict[str, frozenset[str]] = {
    "CounterTop": _TABLE_TOP,
    "DiningTable": _TABLE_TOP,
    "SideTable": _TABLE_TOP,
    "Cabinet": _names("Book Bowl CD Cloth Cup DishSponge Kettle Mug Pan Plate Pot SoapBar Vase WineBottle"),
    "Drawer": _names(
        "Book CD CellPhone Cloth CreditCard DishSponge Fork KeyChain Knife Pen Pencil SoapBar Spatula Spoon Watch"
    ),
    "Shelf": _names(
        """AlarmClock Book Bowl CD CellPhone Cloth CreditCard Cup DishSponge Kettle KeyChain Mug Pen Pencil Plate Pot
        SoapBar Vase Watch WineBottle"""
    ),
    "Fridge": _names("Apple Bowl Bread Cup Egg Lettuce Mug Pan Plate Pot Potato Tomato WineBottle"),
    "Microwave": _names("Apple Bowl Bread Cup Egg Mug Plate Potato Tomato"),
    "SinkBasin": _names(
        "Apple Bowl Cloth Cup DishSponge Egg Fork Kettle Knife Lettuce Mug Pan Plate Pot Potato SoapBar Spatula Spoon "
        "Tomato"
    ),
    "GarbageCan": _names("Apple Bread CD Cloth DishSponge Egg Lettuce Pen Pencil Potato SoapBar Tomato WineBottle"),
    "StoveBurner": _names("Kettle Pan Pot"),
    "Desk": _names(
        "AlarmClock Book Bowl CD CellPhone Cloth CreditCard Cup KeyChain Mug Pen Pencil Plate Vase Watch WineBottle"
    ),
}
#: Receptacle classes that open and close.
OPENABLE: frozenset[str] = frozenset({"Fridge", "Cabinet", "Microwave", "Drawer"})
#: Receptacle classes a room may hold several of (``cabinet 1``, ``cabinet 2``, ...).
REPEATABLE: frozenset[str] = frozenset({"Cabinet", "Drawer", "CounterTop", "Shelf", "StoveBurner", "SideTable"})
#: Object classes ALFRED treats as movable receptacles (``isReceptacleObject``).
RECEPTACLE_OBJECTS: frozenset[str] = _names("Bowl Cup Mug Pan Plate Pot")
CLEANABLE: frozenset[str] = _names(
    "Apple Bowl Cloth Cup DishSponge Egg Fork Kettle Knife Lettuce Mug Pan Plate Pot Potato SoapBar Spatula Spoon "
    "Tomato"
)
HEATABLE: frozenset[str] = _names("Apple Bread Cup Egg Mug Plate Potato Tomato")
COOLABLE: frozenset[str] = _names("Apple Bowl Bread Cup Egg Lettuce Mug Pan Plate Pot Potato Tomato WineBottle")
SLICEABLE: frozenset[str] = _names("Apple Bread Egg Lettuce Potato Tomato")

#: Receptacles of a kitchen (every task type but ``look_at_obj_in_light``).
KITCHEN: tuple[str, ...] = (
    "CounterTop",
    "DiningTable",
    "Cabinet",
    "Drawer",
    "Shelf",
    "Fridge",
    "Microwave",
    "SinkBasin",
    "GarbageCan",
    "StoveBurner",
)
#: Receptacles of a bedroom or study (``look_at_obj_in_light``: the lamp stands on a side table or desk).
BEDROOM: tuple[str, ...] = ("SideTable", "Desk", "Drawer", "Shelf", "GarbageCan", "Cabinet", "DiningTable")
#: Where the desk lamp of ``look_at_obj_in_light`` stands.
LAMP_RECEPTACLES: tuple[str, ...] = ("SideTable", "Desk")
#: Objects looked at under a lamp (ALFRED's ``look_at_obj_in_light`` targets among :data:`OBJECT_CLASSES`).
LOOK_AT_OBJECTS: tuple[str, ...] = (
    "AlarmClock",
    "Book",
    "Bowl",
    "CD",
    "CellPhone",
    "CreditCard",
    "KeyChain",
    "Mug",
    "Pen",
    "Pencil",
    "Vase",
    "Watch",
)
#: The appliance each state-changing task type needs.
APPLIANCE: dict[str, str] = {
    "pick_clean_then_place_in_recep": "SinkBasin",
    "pick_heat_then_place_in_recep": "Microwave",
    "pick_cool_then_place_in_recep": "Fridge",
}
#: The object classes each task type may ask for.
TARGETS: dict[str, tuple[str, ...]] = {
    "pick_and_place_simple": OBJECT_CLASSES,
    "pick_two_obj_and_place": OBJECT_CLASSES,
    "look_at_obj_in_light": LOOK_AT_OBJECTS,
    "pick_clean_then_place_in_recep": tuple(c for c in OBJECT_CLASSES if c in CLEANABLE),
    "pick_heat_then_place_in_recep": tuple(c for c in OBJECT_CLASSES if c in HEATABLE),
    "pick_cool_then_place_in_recep": tuple(c for c in OBJECT_CLASSES if c in COOLABLE),
}


def receptacles_for(object_class: str, pool: tuple[str, ...]) -> tuple[str, ...]:
    """The receptacle classes of ``pool`` that can contain ``object_class``."""
    return tuple(r for r in pool if object_class in CAN_CONTAIN[r])
