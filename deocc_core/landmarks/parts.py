"""Named iBUG-68 parts and points.

Code writes ``part("eye_right")`` or ``point("chin")``, never a bare index.

Parts (jaw, brow_right, brow_left, nose_bridge, nose_base, eye_right, eye_left,
lips_outer, lips_inner) come from ``ibug68.txt`` (see
:func:`deocc_core.landmarks.ibug.ibug_scheme`); point names from ``ibug68_points.txt``
(short names for the points code uses) and the point names of ``ibug68.txt``.

Convention:
    0-based iBUG-68 indices; 'right' / 'left' are the subject's (subject-right points sit
    on the image's left in a frontal photo).
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import numpy as np
import numpy.typing as npt

from deocc_core.errors import ConfigError
from deocc_core.landmarks.ibug import ibug_scheme

__all__ = ["part", "point", "points", "point_names"]


@lru_cache(maxsize=1)
def point_names() -> dict[str, int]:
    """Every point name → index.

    The short names of ``ibug68_points.txt``, then the 68 names of ``ibug68.txt``.

    Example:
        >>> point_names()["nose_tip"], point_names()["right_eye_outer"]
        (30, 36)
    """
    text = (files("deocc_core.landmarks") / "ibug68_points.txt").read_text()
    rows = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    names = {r[0]: int(r[1]) for r in rows}
    names.update({n: i for i, n in enumerate(ibug_scheme().names)})
    return names


def point(name: str) -> int:
    """The index of a named point.

    Raises:
        ConfigError: an unknown name (the message lists the short names).

    Example:
        >>> point("chin"), point("eye_left_outer")
        (8, 45)
    """
    names = point_names()
    if name not in names:
        short = [n for n in names if n not in ibug_scheme().names]
        raise ConfigError(f"unknown iBUG-68 point {name!r} (names: {', '.join(short)}, ...)")
    return names[name]


def points(*names: str) -> npt.NDArray[np.int64]:
    """Indices of several named points, in the order given.

    Example:
        >>> points("mouth_right", "mouth_left").tolist()
        [48, 54]
    """
    return np.array([point(n) for n in names], np.int64)


def part(name: str) -> npt.NDArray[np.int64]:
    """The indices of a face part, in iBUG order.

    Raises:
        ConfigError: an unknown part (the message lists the parts).

    Example:
        >>> part("eye_right").tolist()
        [36, 37, 38, 39, 40, 41]
    """
    parts = ibug_scheme().parts
    if name not in parts:
        raise ConfigError(f"unknown iBUG-68 part {name!r} (parts: {', '.join(parts)})")
    return parts[name]
