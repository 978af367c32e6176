"""The one parameter-vector layout shared by fitting, shards and inference.

Layout of a packed vector ``[P]`` float32, ``P = n_id + n_exp + POSE_SIZE``::

    [ id coefficients (n_id) | expression coefficients (n_exp) | pose (6) ]
    pose = [scale, pitch, yaw, roll, tx, ty]

Convention:
    Coefficients are in model units (the basis columns multiply them directly); the
    prior scale of each is the model's ``id_std`` / ``exp_std``. Angles are radians,
    applied as R = Rz(roll) @ Ry(yaw) @ Rx(pitch) to model-space vertices (y up,
    z toward the viewer). The weak-perspective camera maps a model-space vertex v to
    image pixels (x right, y down, origin at the centre of the top-left pixel) as
    ``x = scale * (R v)_x + tx``, ``y = -scale * (R v)_y + ty``; depth
    ``z = scale * (R v)_z`` grows toward the viewer. Positive yaw turns the nose
    toward the image's right (+x); positive pitch tilts it down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.errors import ShapeError

__all__ = ["POSE_SIZE", "POSE_FIELDS", "Pose", "FitParams", "pack_params", "unpack_params"]

POSE_FIELDS: tuple[str, ...] = ("scale", "pitch", "yaw", "roll", "tx", "ty")
POSE_SIZE = len(POSE_FIELDS)


@dataclass(frozen=True)
class Pose:
    """Weak-perspective pose: scale (pixels per model unit), angles (radians), 2D shift (pixels)."""

    scale: float
    pitch: float
    yaw: float
    roll: float
    tx: float
    ty: float

    def as_array(self) -> npt.NDArray[np.float32]:
        """Return ``[6]`` float32 in :data:`POSE_FIELDS` order."""
        return np.array([getattr(self, f) for f in POSE_FIELDS], np.float32)

    @classmethod
    def from_array(cls, a: npt.ArrayLike) -> Pose:
        """Build from a ``[6]`` array in :data:`POSE_FIELDS` order."""
        a = np.asarray(a, np.float64).reshape(-1)
        if a.shape != (POSE_SIZE,):
            raise ShapeError(f"pose: expected shape [{POSE_SIZE}], got {list(a.shape)}")
        return cls(*(float(v) for v in a))

    def degrees(self) -> dict[str, float]:
        """Angles in degrees, for reports and JSON: ``{"pitch": .., "yaw": .., "roll": ..}``."""
        return {k: float(np.degrees(getattr(self, k))) for k in ("pitch", "yaw", "roll")}


@dataclass(frozen=True)
class FitParams:
    """3DMM coefficients and pose of one face.

    Attributes:
        id_coef: ``[n_id]`` float32, identity coefficients, model units.
        exp_coef: ``[n_exp]`` float32, expression coefficients, model units.
        pose: the weak-perspective pose.
    """

    id_coef: npt.NDArray[np.float32]
    exp_coef: npt.NDArray[np.float32]
    pose: Pose


def pack_params(params: FitParams) -> npt.NDArray[np.float32]:
    """Pack into the ``[n_id + n_exp + 6]`` float32 vector of the module docstring.

    Example:
        >>> p = FitParams(np.zeros(3, np.float32), np.zeros(2, np.float32), Pose(1, 0, 0, 0, 0, 0))
        >>> pack_params(p).shape
        (11,)
    """
    return np.concatenate(
        [
            np.asarray(params.id_coef, np.float32),
            np.asarray(params.exp_coef, np.float32),
            params.pose.as_array(),
        ]
    ).astype(np.float32)


def unpack_params(vector: npt.NDArray[np.floating], n_id: int, n_exp: int) -> FitParams:
    """Inverse of :func:`pack_params`.

    Args:
        vector: ``[n_id + n_exp + 6]`` float array.
        n_id: number of identity coefficients.
        n_exp: number of expression coefficients.

    Raises:
        ShapeError: if the vector length is not ``n_id + n_exp + 6``.

    Example:
        >>> unpack_params(np.arange(11, dtype=np.float32), 3, 2).pose.scale
        5.0
    """
    v = check_array(np.asarray(vector), "params", (n_id + n_exp + POSE_SIZE,), cast=np.float32)
    return FitParams(
        v[:n_id].copy(), v[n_id : n_id + n_exp].copy(), Pose.from_array(v[n_id + n_exp :])
    )
