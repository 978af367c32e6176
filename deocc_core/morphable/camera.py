"""Weak-perspective camera: rotation, projection and a closed-form pose estimate.

Convention:
    See :mod:`deocc_core.morphable.params`: R = Rz(roll) @ Ry(yaw) @ Rx(pitch);
    ``x = s (R v)_x + tx``, ``y = -s (R v)_y + ty``, depth ``s (R v)_z`` (larger = closer).
    AFLW2000-3D / 300W-LP ``Pose_Para`` angles are 3DDFA's: their rotation is
    ``(Rz Ry Rx)ᵀ`` of their angles, which is our R; for a pure turn our yaw = -Pose_Para[1]
    (pitch and roll flip sign likewise), combined angles convert through the matrix
    (:func:`deocc_core.morphable.ddfa.pose_from_ddfa`).
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.morphable.params import Pose

__all__ = ["rotation_matrix", "rotation_angles", "project", "estimate_pose"]


def rotation_matrix(pitch: float, yaw: float, roll: float) -> npt.NDArray[np.float64]:
    """R = Rz(roll) Ry(yaw) Rx(pitch), angles in radians.

    Returns:
        ``[3, 3]`` float64 rotation.

    Example:
        >>> r = rotation_matrix(0.1, 0.2, 0.3)
        >>> np.allclose(r @ r.T, np.eye(3))
        True
    """
    ca, sa, cb, sb, cc, sc = (
        np.cos(pitch),
        np.sin(pitch),
        np.cos(yaw),
        np.sin(yaw),
        np.cos(roll),
        np.sin(roll),
    )
    rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    return rz @ ry @ rx


def rotation_angles(r: npt.NDArray[np.floating]) -> tuple[float, float, float]:
    """Inverse of :func:`rotation_matrix`: ``(pitch, yaw, roll)`` radians.

    Example:
        >>> np.round(rotation_angles(rotation_matrix(0.1, -0.5, 0.3)), 6).tolist()
        [0.1, -0.5, 0.3]
    """
    yaw = -np.arcsin(np.clip(r[2, 0], -1.0, 1.0))
    pitch = np.arctan2(r[2, 1], r[2, 2])
    roll = np.arctan2(r[1, 0], r[0, 0])
    return float(pitch), float(yaw), float(roll)


def project(vertices: npt.NDArray[np.floating], pose: Pose) -> npt.NDArray[np.float32]:
    """Project model-space vertices to image pixels with depth.

    Args:
        vertices: ``[V, 3]`` model space.
        pose: weak-perspective pose.

    Returns:
        ``[V, 3]`` float32: x pixel, y pixel, depth (larger = closer).

    Example:
        >>> project(np.array([[0, 1, 0.]]), Pose(2, 0, 0, 0, 10, 10)).tolist()
        [[10.0, 8.0, 0.0]]
    """
    v = check_array(np.asarray(vertices), "vertices", (None, 3))
    if v.dtype != np.float32 and v.dtype != np.float64:
        v = v.astype(np.float64)
    r = rotation_matrix(pose.pitch, pose.yaw, pose.roll) * float(pose.scale)
    out = np.empty((v.shape[0], 3), np.float32)
    # flat views: numba vectorises the loop over 1-D arrays, not over [V, 3] rows
    _project_kernel(np.ascontiguousarray(v).reshape(-1), r, float(pose.tx), float(pose.ty), out)
    return out


# float64 arithmetic without FMA contraction (fastmath off), rounded once to float32
@numba.njit(cache=True, nogil=True)
def _project_kernel(v, sr, tx, ty, out):  # pragma: no cover - compiled
    """``out = [(sR v)_x + tx, -(sR v)_y + ty, (sR v)_z]`` per vertex; ``sr`` = scale * R.

    ``v``: ``[3V]`` xyz-interleaved (a flat view of ``[V, 3]``); ``out``: ``[V, 3]``.
    """
    o = out.reshape(-1)
    for i in range(v.shape[0] // 3):
        x, y, z = np.float64(v[3 * i]), np.float64(v[3 * i + 1]), np.float64(v[3 * i + 2])
        o[3 * i] = sr[0, 0] * x + sr[0, 1] * y + sr[0, 2] * z + tx
        o[3 * i + 1] = -(sr[1, 0] * x + sr[1, 1] * y + sr[1, 2] * z) + ty
        o[3 * i + 2] = sr[2, 0] * x + sr[2, 1] * y + sr[2, 2] * z


def estimate_pose(
    points3d: npt.NDArray[np.floating],
    points2d: npt.NDArray[np.floating],
    weights: npt.NDArray[np.floating] | None = None,
) -> Pose:
    """Closed-form weak-perspective pose: least-squares affine camera, then the nearest rotation.

    Args:
        points3d: ``[N, 3]`` model-space points (N >= 4, not coplanar for a stable estimate).
        points2d: ``[N, 2]`` pixel positions.
        weights: ``[N]`` non-negative weights (0 = ignore), default ones.

    Returns:
        The pose; a good initialisation for :func:`deocc_core.morphable.fit.fit_landmarks`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(20, 3))
        >>> true = Pose(3.0, 0.2, -0.4, 0.1, 50.0, 60.0)
        >>> est = estimate_pose(X, project(X, true)[:, :2])
        >>> np.allclose(est.as_array(), true.as_array(), atol=1e-4)
        True
    """
    x3 = check_array(np.asarray(points3d), "points3d", (None, 3)).astype(np.float64)
    x2 = check_array(np.asarray(points2d), "points2d", (x3.shape[0], 2)).astype(np.float64)
    w = np.ones(len(x3)) if weights is None else np.asarray(weights, np.float64)
    sw = np.sqrt(w)[:, None]
    a = np.concatenate([x3, np.ones((len(x3), 1))], 1) * sw
    b = np.stack([x2[:, 0], -x2[:, 1]], 1) * sw  # y down → y up
    p = np.linalg.lstsq(a, b, rcond=None)[0].T  # [2, 4]
    u, sv, vt = np.linalg.svd(p[:, :3], full_matrices=False)
    r12 = u @ vt  # nearest matrix with orthonormal rows
    r = np.concatenate([r12, np.cross(r12[0], r12[1])[None]], 0)
    pitch, yaw, roll = rotation_angles(r)
    return Pose(float(sv.mean()), pitch, yaw, roll, float(p[0, 3]), float(-p[1, 3]))
