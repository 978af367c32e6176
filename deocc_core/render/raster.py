"""Z-buffer triangle rasterizer (numba): per-pixel depth, triangle id and barycentrics.

Convention:
    Input vertices are ``[V, 3]`` float32 (x pixel, y pixel, depth) from the weak-perspective
    camera (:func:`deocc_core.morphable.camera.project`): x right, y DOWN, pixel centres at
    integer coordinates (the top-left pixel's centre is (0, 0)), depth larger = closer.
    Barycentrics are affine (no perspective correction is needed for a weak-perspective camera).

    Coverage: a pixel is covered when its centre is inside the triangle; centres exactly on
    an edge follow the top-left rule (covered on a triangle's left and top edges, not on its
    right and bottom ones), so a shared edge is drawn by exactly one of its two triangles.

    Winding: a triangle is FRONT-facing when its vertices are counter-clockwise as seen by
    the viewer in model space (y up, z toward the viewer), i.e. its model-space normal
    (v1 - v0) x (v2 - v0) points toward the viewer. Because image y points down, such a
    triangle has a NEGATIVE signed image area
    ``(x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0) < 0``. With ``cull_backfaces`` the
    triangles with positive signed area are skipped; triangles with zero area always are.

    Z-buffer: ``depth`` starts at -inf everywhere and keeps the largest (closest) depth;
    on equal depth the triangle with the lower index wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.errors import InputError

__all__ = ["Raster", "rasterize", "interpolate", "vertex_visibility"]


@dataclass(frozen=True)
class Raster:
    """Rasterizer output (see the module Convention).

    Attributes:
        depth: ``[H, W]`` float32 depth of the closest surface (larger = closer), -inf where empty.
        tri_id: ``[H, W]`` int32 index of the visible triangle, -1 where empty.
        bary: ``[H, W, 3]`` float32 barycentric weights of that triangle's 3 vertices
            (sum 1 on covered pixels, 0 where empty).
        triangles: ``[T, 3]`` int32 the triangles that were rasterized (for :func:`interpolate`).
        n_vertices: V, the number of projected vertices.
    """

    depth: npt.NDArray[np.float32]
    tri_id: npt.NDArray[np.int32]
    bary: npt.NDArray[np.float32]
    triangles: npt.NDArray[np.int32]
    n_vertices: int

    @property
    def mask(self) -> npt.NDArray[np.uint8]:
        """``[H, W]`` uint8, 255 on covered pixels and 0 elsewhere (the paper's mask M)."""
        return ((self.tri_id >= 0).astype(np.uint8)) * np.uint8(255)

    @property
    def covered(self) -> npt.NDArray[np.bool_]:
        """``[H, W]`` bool, covered pixels."""
        return self.tri_id >= 0


# no FMA contraction (fastmath off): the edge expressions must round identically in every triangle
@numba.njit(cache=True, nogil=True)
def _raster_kernel(p, tris, cull, depth, tri_id, bary):  # pragma: no cover - compiled
    """``p``: ``[3V]`` xyz-interleaved, ``tris``: ``[3T]`` (flat views: cheaper addressing)."""
    h, w = depth.shape
    fw = np.float32(w - 1)
    fh = np.float32(h - 1)
    zero = np.float32(0.0)
    for t in range(tris.shape[0] // 3):
        a = tris[3 * t]
        b = tris[3 * t + 1]
        c = tris[3 * t + 2]
        x0 = p[3 * a]
        y0 = p[3 * a + 1]
        x1 = p[3 * b]
        y1 = p[3 * b + 1]
        x2 = p[3 * c]
        y2 = p[3 * c + 1]
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if not (area < zero or (area > zero and not cull)):  # back-facing, zero or NaN
            continue
        fx0 = min(x0, min(x1, x2))
        fx1 = max(x0, max(x1, x2))
        fy0 = min(y0, min(y1, y2))
        fy1 = max(y0, max(y1, y2))
        if fx1 < zero or fy1 < zero or fx0 > fw or fy0 > fh:
            continue
        xmin = int(np.ceil(max(fx0, zero)))
        xmax = int(np.floor(min(fx1, fw)))
        ymin = int(np.ceil(max(fy0, zero)))
        ymax = int(np.floor(min(fy1, fh)))
        if xmin > xmax or ymin > ymax:
            continue
        # orient positively: swap vertices 1 and 2 (and their weights) when the area is negative
        swap = area < zero
        if swap:
            x1, y1, x2, y2 = x2, y2, x1, y1
            area = -area
        ib = c if swap else b
        ic = b if swap else c
        z0 = p[3 * a + 2]
        z1 = p[3 * ib + 2]
        z2 = p[3 * ic + 2]
        inv = np.float32(1.0) / area
        # edge i is opposite vertex i, E_i = dx * (py - ys) - dy * (px - xs) >= 0 inside. It is
        # evaluated from its lower-id vertex and negated if needed, so the two triangles sharing
        # an edge compute bit-identical values of opposite sign: no cracks, no double draws.
        s0 = ib < ic
        s1 = ic < a
        s2 = a < ib
        ax0, ay0, bx0, by0 = (x1, y1, x2, y2) if s0 else (x2, y2, x1, y1)
        ax1, ay1, bx1, by1 = (x2, y2, x0, y0) if s1 else (x0, y0, x2, y2)
        ax2, ay2, bx2, by2 = (x0, y0, x1, y1) if s2 else (x1, y1, x0, y0)
        d0x = bx0 - ax0
        d0y = by0 - ay0
        d1x = bx1 - ax1
        d1y = by1 - ay1
        d2x = bx2 - ax2
        d2y = by2 - ay2
        g0 = np.float32(1.0) if s0 else np.float32(-1.0)
        g1 = np.float32(1.0) if s1 else np.float32(-1.0)
        g2 = np.float32(1.0) if s2 else np.float32(-1.0)
        # top-left rule for E == 0: keep left edges (running up) and top edges (running right),
        # judged on the edge's direction within this (positively oriented) triangle
        k0 = g0 * d0y < zero or (d0y == zero and g0 * d0x > zero)
        k1 = g1 * d1y < zero or (d1y == zero and g1 * d1x > zero)
        k2 = g2 * d2y < zero or (d2y == zero and g2 * d2x > zero)
        for py in range(ymin, ymax + 1):
            fy = np.float32(py)
            for px in range(xmin, xmax + 1):
                fx = np.float32(px)
                e0 = g0 * (d0x * (fy - ay0) - d0y * (fx - ax0))
                if e0 < zero or (e0 == zero and not k0):
                    continue
                e1 = g1 * (d1x * (fy - ay1) - d1y * (fx - ax1))
                if e1 < zero or (e1 == zero and not k1):
                    continue
                e2 = g2 * (d2x * (fy - ay2) - d2y * (fx - ax2))
                if e2 < zero or (e2 == zero and not k2):
                    continue
                w0 = e0 * inv
                w1 = e1 * inv
                w2 = e2 * inv
                z = w0 * z0 + w1 * z1 + w2 * z2
                if z > depth[py, px]:
                    depth[py, px] = z
                    tri_id[py, px] = t
                    bary[py, px, 0] = w0
                    bary[py, px, 1] = w2 if swap else w1
                    bary[py, px, 2] = w1 if swap else w2


def rasterize(
    projected: npt.NDArray[np.floating],
    triangles: npt.NDArray[np.integer],
    height: int,
    width: int,
    *,
    cull_backfaces: bool = True,
) -> Raster:
    """Rasterize a triangle mesh with a Z-buffer (see the module Convention).

    Args:
        projected: ``[V, 3]`` (x pixel, y pixel, depth), depth larger = closer; any float dtype.
        triangles: ``[T, 3]`` 0-based vertex ids; front faces counter-clockwise in model space.
        height: output rows (>= 1).
        width: output columns (>= 1).
        cull_backfaces: skip triangles facing away from the viewer (positive image area).

    Returns:
        :class:`Raster`. Triangles partly or wholly outside the frame are clipped; zero-area
        and NaN triangles are skipped.

    Raises:
        InputError: wrong shapes, a non-positive size, or vertex ids out of range.

    Example:
        >>> v = np.array([[0, 0, 1], [0, 9, 1], [9, 0, 1]], np.float32)  # front-facing (y down)
        >>> r = rasterize(v, np.array([[0, 1, 2]]), 10, 10)
        >>> int((r.mask == 255).sum()), r.tri_id[0, 0].item(), r.tri_id[9, 9].item()
        (45, 0, -1)
        >>> int(rasterize(v, np.array([[0, 2, 1]]), 10, 10).covered.sum())  # back-facing: culled
        0
    """
    if int(height) < 1 or int(width) < 1:
        raise InputError(f"rasterize: image size must be positive, got {height}x{width}")
    p = np.ascontiguousarray(check_array(np.asarray(projected), "projected", (None, 3)), np.float32)
    t = np.ascontiguousarray(check_array(np.asarray(triangles), "triangles", (None, 3)), np.int32)
    if t.size and (t.min() < 0 or t.max() >= len(p)):
        raise InputError(
            f"rasterize: triangle vertex ids must be in [0, {len(p)}), got [{t.min()}, {t.max()}]"
        )
    return _rasterize(p, t, int(height), int(width), bool(cull_backfaces))


def _rasterize(p: np.ndarray, t: np.ndarray, height: int, width: int, cull: bool) -> Raster:
    """:func:`rasterize` for trusted inputs (float32 / int32, C-contiguous, ids in range)."""
    depth = np.full((height, width), -np.inf, np.float32)
    tri_id = np.full((height, width), -1, np.int32)
    bary = np.zeros((height, width, 3), np.float32)
    if t.size:
        _raster_kernel(p.reshape(-1), t.reshape(-1), cull, depth, tri_id, bary)
    return Raster(depth, tri_id, bary, t, len(p))


def interpolate(raster: Raster, attributes: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """Interpolate per-vertex attributes to pixels with the raster's barycentrics.

    Args:
        raster: output of :func:`rasterize`.
        attributes: ``[V, C]`` per-vertex values (e.g. colours, normals, uv).

    Returns:
        ``[H, W, C]`` float32, 0 where no triangle covers the pixel.

    Example:
        >>> v = np.array([[0, 0, 1], [0, 9, 1], [9, 0, 1]], np.float32)
        >>> r = rasterize(v, np.array([[0, 1, 2]]), 10, 10)
        >>> out = interpolate(r, np.full((3, 2), 0.5))
        >>> out.shape, float(out[1, 1, 0]), float(out[9, 9, 0])
        ((10, 10, 2), 0.5, 0.0)
    """
    attr = np.asarray(attributes, np.float32)
    if attr.ndim != 2 or len(attr) != raster.n_vertices:
        raise InputError(
            "interpolate: attributes must be [V, C] for the rasterized mesh, "
            f"got shape {attr.shape}"
        )
    out = np.zeros(raster.tri_id.shape + (attr.shape[1],), np.float32)
    _interp_kernel(raster.tri_id, raster.bary, raster.triangles, np.ascontiguousarray(attr), out)
    return out


@numba.njit(cache=True, nogil=True, fastmath=True)
def _interp_kernel(tri_id, bary, tris, attr, out):  # pragma: no cover - compiled
    h, w = tri_id.shape
    for y in range(h):
        for x in range(w):
            t = tri_id[y, x]
            if t < 0:
                continue
            a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
            w0, w1, w2 = bary[y, x, 0], bary[y, x, 1], bary[y, x, 2]
            for k in range(attr.shape[1]):
                out[y, x, k] = w0 * attr[a, k] + w1 * attr[b, k] + w2 * attr[c, k]


def vertex_visibility(
    raster: Raster,
    projected: npt.NDArray[np.floating],
    triangles: npt.NDArray[np.integer] | None = None,
    *,
    tolerance: float = 1e-2,
) -> npt.NDArray[np.bool_]:
    """Which vertices the camera sees.

    A vertex is visible when it is in frame and either belongs to a triangle that won a
    pixel, or its depth is not behind the Z-buffer at its nearest pixel by more than
    ``tolerance`` × the depth range of ``projected`` (empty pixels hide nothing).

    Args:
        raster: output of :func:`rasterize` on ``projected``.
        projected: ``[V, 3]`` (x pixel, y pixel, depth).
        triangles: ``[T, 3]``; default ``raster.triangles``.
        tolerance: relative depth tolerance (fraction of the depth range).

    Returns:
        ``[V]`` bool.

    Example:
        >>> v = np.array([[0, 0, 1], [0, 9, 1], [9, 0, 1], [50, 50, 0]], np.float32)
        >>> vertex_visibility(rasterize(v, np.array([[0, 1, 2]]), 10, 10), v).tolist()
        [True, True, True, False]
    """
    proj = np.ascontiguousarray(
        check_array(np.asarray(projected), "projected", (None, 3)), np.float32
    )
    tris = np.ascontiguousarray(raster.triangles if triangles is None else triangles, np.int32)
    span = max(float(proj[:, 2].max() - proj[:, 2].min()) if len(proj) else 0.0, 1e-6)
    vis = np.zeros(len(proj), np.bool_)
    _visibility_kernel(proj, raster.depth, raster.tri_id, tris, np.float32(tolerance * span), vis)
    return vis


@numba.njit(cache=True, nogil=True)
def _visibility_kernel(proj, depth, tri_id, tris, tol, vis):  # pragma: no cover - compiled
    h, w = depth.shape
    won = np.zeros(proj.shape[0], np.bool_)
    for y in range(h):
        for x in range(w):
            t = tri_id[y, x]
            if t >= 0:
                won[tris[t, 0]] = True
                won[tris[t, 1]] = True
                won[tris[t, 2]] = True
    for i in range(proj.shape[0]):
        fx = np.floor(proj[i, 0] + np.float32(0.5))
        fy = np.floor(proj[i, 1] + np.float32(0.5))
        if not (fx >= 0 and fx < w and fy >= 0 and fy < h):  # also rejects NaN
            continue
        vis[i] = won[i] or proj[i, 2] >= depth[int(fy), int(fx)] - tol
