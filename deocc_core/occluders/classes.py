"""Occluder classes and evaluation regions: the enums stored in shards.

Shards store the integer values; their names are written into the shard attributes so
a shard stays readable if these enums grow. Never renumber an existing member.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["OccluderClass", "Region", "enum_names"]


class OccluderClass(IntEnum):
    """The paper's six occluder classes."""

    MASK = 0
    EYEGLASSES = 1
    SUNGLASSES = 2
    CUP = 3
    SCARF = 4
    HAND = 5


class Region(IntEnum):
    """Evaluation groups of the paper's Table 1, derived from what the occluder covers."""

    LOWER = 0  # lower face: mouth / chin / nose tip
    UPPER = 1  # upper face: eyes / brows
    LEFT_RIGHT_HALF = 2  # one vertical half of the face
    THREE_QUARTERS = 3  # most of the face
    OTHER = 4  # none of the above (e.g. too little covered)


def enum_names(enum: type[IntEnum]) -> dict[str, int]:
    """Lower-case name → value, for shard attributes and reports.

    Example:
        >>> enum_names(Region)["upper"]
        1
    """
    return {m.name.lower(): int(m.value) for m in enum}
