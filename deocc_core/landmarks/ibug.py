"""The iBUG 300-W 68-point scheme: mirror map and face parts, read from ``ibug68.txt``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import numpy as np
import numpy.typing as npt

__all__ = ["IbugScheme", "ibug_scheme", "N_LANDMARKS"]

N_LANDMARKS = 68


@dataclass(frozen=True)
class IbugScheme:
    """The 68-point scheme.

    Attributes:
        mirror: ``[68]`` int64, index of each point's partner under a horizontal flip.
        parts: part name → ``[k]`` int64 point indices (jaw, brow_right, brow_left,
            nose_bridge, nose_base, eye_right, eye_left, lips_outer, lips_inner).
        names: the 68 point names.
    """

    mirror: npt.NDArray[np.int64]
    parts: dict[str, npt.NDArray[np.int64]]
    names: tuple[str, ...]


@lru_cache(maxsize=1)
def ibug_scheme() -> IbugScheme:
    """Load the scheme (cached; the file ships with the package).

    Example:
        >>> s = ibug_scheme()
        >>> int(s.mirror[36]), s.parts["eye_right"].tolist()[:2]
        (45, [36, 37])
    """
    text = (files("deocc_core.landmarks") / "ibug68.txt").read_text()
    rows = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    mirror = np.array([int(r[1]) for r in rows], np.int64)
    parts: dict[str, list[int]] = {}
    for r in rows:
        parts.setdefault(r[2], []).append(int(r[0]))
    return IbugScheme(
        mirror, {k: np.array(v, np.int64) for k, v in parts.items()}, tuple(r[3] for r in rows)
    )
