"""The contract between the rollout datamodule, the LightningModules and the callbacks that steer them.

Callbacks reach the datamodule and the module through ``trainer`` only. These protocols declare what they may use,
so that no callback imports a datamodule or module class (and no module imports a callback), and a datamodule or
module of your own works with the callbacks when it has these members. :class:`~datamodules.RolloutDataModule` is a
:class:`RolloutSource`; ``ReflectRLModule`` is a :class:`ReplayOwner`. :func:`require` checks an object and names
what is missing.
"""

from __future__ import annotations

from typing import Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


@runtime_checkable
class CurriculumTarget(Protocol):
    """What :class:`callbacks.CurriculumCallback` uses of the datamodule: the environment's stages and the current one.

    Example:
        >>> isinstance(RolloutDataModule("ReflectRL/DangerousTaxi-v0"), CurriculumTarget)
        True
    """

    @property
    def env_id(self) -> str:
        """The environment the stages belong to (for messages)."""
        ...

    @property
    def stage(self) -> str | None:
        """The curriculum stage of new training episodes (``None``: the environment's default)."""
        ...

    def known_stages(self) -> tuple[str, ...]:
        """The environment's curriculum stages, easiest first."""
        ...

    def set_stage(self, stage: str | None) -> None:
        """Switch the curriculum stage of new training episodes."""
        ...


@runtime_checkable
class MistakeTarget(Protocol):
    """What :class:`callbacks.NegativeExampleCallback` uses of the datamodule, which owns the mistake probability.

    Example:
        >>> datamodule = RolloutDataModule("ReflectRL/DangerousTaxi-v0", mistake_prob=0.2)
        >>> isinstance(datamodule, MistakeTarget), datamodule.mistake_prob
        (True, 0.2)
    """

    @property
    def mistake_prob(self) -> float:
        """The teacher's probability of a deliberate wrong action now."""
        ...

    @property
    def streams_teacher_turns(self) -> bool:
        """Whether training reads a stream of new teacher episodes, so that a new probability reaches its turns."""
        ...

    def set_mistake_prob(self, probability: float) -> None:
        """Change the probability, effective from the next turn the teacher plays."""
        ...


@runtime_checkable
class RolloutSource(CurriculumTarget, MistakeTarget, Protocol):
    """Everything the callbacks use of the datamodule: :class:`CurriculumTarget` and :class:`MistakeTarget`.

    Example:
        >>> isinstance(RolloutDataModule("ReflectRL/DangerousTaxi-v0"), RolloutSource)
        True
    """


@runtime_checkable
class ReplayOwner(Protocol):
    """What :class:`callbacks.CurriculumCallback` uses of a LightningModule that replays past episodes (optional).

    Example:
        >>> isinstance(ReflectRLModule(), ReplayOwner)
        True
    """

    def clear_replay(self) -> None:
        """Forget the replayed episodes (they belong to the stage just left)."""
        ...


def protocol_members(protocol: type) -> tuple[str, ...]:
    """The public members a protocol of this module declares, its bases' included, in declaration order.

    Example:
        >>> protocol_members(MistakeTarget)
        ('mistake_prob', 'streams_teacher_turns', 'set_mistake_prob')
    """
    names: list[str] = []
    for base in reversed(protocol.__mro__):
        if base.__module__ != __name__:  # Protocol, Generic, object
            continue
        for name in [*getattr(base, "__annotations__", {}), *vars(base)]:
            if not name.startswith("_") and name not in names:
                names.append(name)
    return tuple(names)


def require(obj: object, protocol: type[T], user: str, role: str = "datamodule") -> T:
    """Return ``obj`` if it has every member of ``protocol``; otherwise raise, naming what is missing.

    Args:
        obj: The object to check (e.g. ``trainer.datamodule``, which may be ``None``).
        protocol: One of this module's protocols.
        user: Who needs it, for the message (e.g. ``"CurriculumCallback"``).
        role: What ``obj`` is, for the message (``"datamodule"``, ``"LightningModule"``).

    Raises:
        TypeError: naming ``user``, the protocol and the missing members.

    Example:
        >>> datamodule = require(trainer.datamodule, CurriculumTarget, "CurriculumCallback")
    """
    members = protocol_members(protocol)
    wanted = f"{user} needs a {role} with {', '.join(members)} (datamodules.protocol.{protocol.__name__})"
    if obj is None:
        raise TypeError(f"{wanted}; the trainer has no {role}.")
    missing = [name for name in members if not hasattr(obj, name)]
    if missing:
        raise TypeError(f"{wanted}; {type(obj).__name__} has no {', '.join(missing)}.")
    return obj  # type: ignore[return-value]
