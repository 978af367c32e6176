"""Z-buffer triangle rasterizer (numba): per-pixel depth, triangle id and barycentrics.

Convention:
    Input vertices are ``[V, 3]`` float32 (x pixel, y pixel, depth), depth larger = closer,
    pixel centres at integer coordinates. A pixel is covered when its centre lies inside
    the triangle (edges inclusive, either winding: no back-face culling, the Z-buffer
    resolves occlusion).
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array

__all__ = ["Raster", "rasterize"]


@dataclass(frozen=True)
class Raster:
    """Rasterizer output.

    Attributes:
        depth: ``[H, W]`` float32, depth of the closest surface, -inf where empty.
        tri_id: ``[H, W]`` int32 triangle index, -1 where empty.
        bary: ``[H, W, 3]`` float32 barycentric weights of the triangle's 3 vertices.
    """

    depth: npt.NDArray[np.float32]
    tri_id: npt.NDArray[np.int32]
    bary: npt.NDArray[np.float32]

    @property
    def mask(self) -> npt.NDArray[np.bool_]:
        """``[H, W]`` bool, covered pixels."""
        return self.tri_id >= 0


@numba.njit(cache=True, nogil=True)
def _raster_kernel(vx, vy, vz, tris, depth, tri_id, bary):  # pragma: no cover - compiled
    h, w = depth.shape
    for t in range(tris.shape[0]):
        a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
        x0, y0, x1, y1, x2, y2 = vx[a], vy[a], vx[b], vy[b], vx[c], vy[c]
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if abs(area) < 1e-12:
            continue
        xmin = max(int(np.ceil(min(x0, min(x1, x2)))), 0)
        xmax = min(int(np.floor(max(x0, max(x1, x2)))), w - 1)
        ymin = max(int(np.ceil(min(y0, min(y1, y2)))), 0)
        ymax = min(int(np.floor(max(y0, max(y1, y2)))), h - 1)
        inv = 1.0 / area
        for py in range(ymin, ymax + 1):
            for px in range(xmin, xmax + 1):
                w0 = ((x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)) * inv
                w1 = ((x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)) * inv
                w2 = 1.0 - w0 - w1
                if w0 < -1e-6 or w1 < -1e-6 or w2 < -1e-6:
                    continue
                z = w0 * vz[a] + w1 * vz[b] + w2 * vz[c]
                if z > depth[py, px]:
                    depth[py, px] = z
                    tri_id[py, px] = t
                    bary[py, px, 0] = w0
                    bary[py, px, 1] = w1
                    bary[py, px, 2] = w2


def rasterize(projected: npt.NDArray[np.floating], triangles: npt.NDArray[np.integer], height: int, width: int) -> Raster:
    """Rasterize a triangle mesh with a Z-buffer.

    Args:
        projected: ``[V, 3]`` (x pixel, y pixel, depth), depth larger = closer.
        triangles: ``[T, 3]`` vertex ids.
        height, width: output size in pixels.

    Returns:
        :class:`Raster`.

    Example:
        >>> r = rasterize(np.array([[0, 0, 1], [9, 0, 1], [0, 9, 1]], np.float32), np.array([[0, 1, 2]]), 10, 10)
        >>> int(r.mask.sum()), r.tri_id[0, 0].item(), r.tri_id[9, 9].item()
        (55, 0, -1)
    """
    p = check_array(np.asarray(projected), "projected", (None, 3)).astype(np.float64)
    t = check_array(np.asarray(triangles), "triangles", (None, 3)).astype(np.int64)
    depth = np.full((height, width), -np.inf, np.float32)
    tri_id = np.full((height, width), -1, np.int32)
    bary = np.zeros((height, width, 3), np.float32)
    _raster_kernel(p[:, 0].copy(), p[:, 1].copy(), p[:, 2].copy(), np.ascontiguousarray(t), depth, tri_id, bary)
    return Raster(depth, tri_id, bary)
