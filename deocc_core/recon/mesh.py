"""A depth map as a mesh: one vertex per face pixel, in the model's space.

The detailed shape from shape-from-shading is a depth map at the crop's resolution; as a
mesh it has one vertex per pixel inside the face and two triangles per 2x2 block of them
(one where a corner is missing, so the outline is not jagged by a full pixel), and no
triangle across a depth step steeper than ``max_slope`` (a nose over a cheek at a turned
pose). Vertices are unprojected through the fitted weak-perspective camera, so the mesh
lies where the fitted 3DMM mesh lies (same units, same axes) and the two overlay in a
viewer.

Convention:
    Pixel (x = column, y = row, y down) with depth ``z`` (px, larger = closer) → camera
    ``((x - tx) / s, -(y - ty) / s, z / s)`` → model space ``Rᵀ · camera``
    (:mod:`deocc_core.morphable.params`). Triangles counter-clockwise seen from the camera
    (front-facing for :func:`deocc_core.render.raster.rasterize`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.morphable.camera import rotation_matrix
from deocc_core.morphable.params import Pose

__all__ = ["DepthMesh", "depth_mesh", "unproject"]


@dataclass(frozen=True)
class DepthMesh:
    """A depth map's mesh.

    Attributes:
        vertices: ``[N, 3]`` float32 model space (model units).
        triangles: ``[T, 3]`` int32 vertex ids.
        pixels: ``[N, 2]`` int32 (row, col) of each vertex in the depth map.
    """

    vertices: npt.NDArray[np.float32]
    triangles: npt.NDArray[np.int32]
    pixels: npt.NDArray[np.int32]


def unproject(points: npt.NDArray[np.floating], pose: Pose) -> npt.NDArray[np.float32]:
    """Inverse of :func:`deocc_core.morphable.camera.project`: pixels + depth → model space.

    Args:
        points: ``[N, 3]`` (x pixel, y pixel, depth px).
        pose: the weak-perspective pose.

    Returns:
        ``[N, 3]`` float32 model-space points.

    Example:
        >>> from deocc_core.morphable.camera import project
        >>> pose = Pose(2.0, 0.1, -0.3, 0.05, 40.0, 50.0)
        >>> v = np.array([[10.0, -5.0, 30.0]])
        >>> bool(np.allclose(unproject(project(v, pose), pose), v, atol=1e-4))
        True
    """
    p = check_array(np.asarray(points), "points", (None, 3)).astype(np.float64)
    cam = np.stack(
        [(p[:, 0] - pose.tx) / pose.scale, -(p[:, 1] - pose.ty) / pose.scale, p[:, 2] / pose.scale],
        1,
    )
    r = rotation_matrix(pose.pitch, pose.yaw, pose.roll)
    return (cam @ r).astype(np.float32)  # Rᵀ applied to row vectors


def depth_mesh(depth: npt.NDArray[np.floating], pose: Pose, max_slope: float = 8.0) -> DepthMesh:
    """Mesh a depth map (module docstring).

    Args:
        depth: ``[H, W]`` depth (px, larger = closer); -inf / NaN = no surface.
        pose: the fitted pose the depth map was rendered with (crop pixels).
        max_slope: largest depth step between neighbouring vertices of a triangle, px per
            px (8: ~83 degrees from the image plane; the silhouette of a cheek is steep,
            a nose over a cheek is a jump).

    Returns:
        :class:`DepthMesh`.

    Example:
        >>> m = depth_mesh(np.zeros((3, 4)), Pose(1.0, 0, 0, 0, 0, 0))
        >>> m.vertices.shape, m.triangles.shape
        ((12, 3), (12, 3))
    """
    z = check_array(np.asarray(depth), "depth", (None, None)).astype(np.float32)
    valid = np.isfinite(z)
    rows, cols = np.nonzero(valid)
    index = np.full(z.shape, -1, np.int64)
    index[rows, cols] = np.arange(len(rows))
    a, b = index[:-1, :-1], index[:-1, 1:]  # (r, c), (r, c + 1)
    c, d = index[1:, :-1], index[1:, 1:]  # (r + 1, c), (r + 1, c + 1)
    hi = np.where(valid, z, -np.inf)
    lo = np.where(valid, z, np.inf)
    q_hi = np.maximum.reduce([hi[:-1, :-1], hi[:-1, 1:], hi[1:, :-1], hi[1:, 1:]])
    q_lo = np.minimum.reduce([lo[:-1, :-1], lo[:-1, 1:], lo[1:, :-1], lo[1:, 1:]])
    with np.errstate(invalid="ignore"):  # inf - inf where a block has no vertex
        ok = ~(q_hi - q_lo > 1.5 * max_slope)  # the block's diagonal is ~1.4 px
    va, vb, vc, vd = a >= 0, b >= 0, c >= 0, d >= 0
    tris = []
    # image y down: (r,c), (r+1,c), (r,c+1) has a negative signed area = front-facing
    for sel, tri in (
        (va & vb & vc, (a, c, b)),  # upper-left half (also when d is missing)
        (vb & vc & vd, (b, c, d)),  # lower-right half (also when a is missing)
        (va & vc & vd & ~vb, (a, c, d)),  # b missing
        (va & vb & vd & ~vc, (a, d, b)),  # c missing
    ):
        m = sel & ok
        tris.append(np.stack([t[m] for t in tri], 1))
    triangles = np.concatenate(tris, 0).astype(np.int32)
    pts = np.stack([cols, rows, z[rows, cols]], 1).astype(np.float32)
    return DepthMesh(unproject(pts, pose), triangles, np.stack([rows, cols], 1).astype(np.int32))
