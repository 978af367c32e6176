"""Render a fitted 3DMM face: shaded image, silhouette mask M, visibility.

``render_face`` is the composition ``project → rasterize → vertex_normals → shade_sh →
interpolate → uint8`` of the public functions, fused where it pays: every vertex is
shaded in one vectorised pass (cheaper than shading only the used ones one at a time), the
compositing loop interpolates straight to uint8; vertex visibility is computed on first
access. Numerically the image equals that composition to float rounding (a pixel may
differ by one uint8 level; tests/render/test_render.py checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numba
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.errors import InputError
from deocc_core.morphable.camera import project, rotation_matrix
from deocc_core.morphable.model import MorphableModel
from deocc_core.morphable.params import FitParams
from deocc_core.render.raster import Raster, _rasterize, vertex_visibility
from deocc_core.render.shading import DEFAULT_SH, _unit_normals

__all__ = ["RenderResult", "render_face", "covered_to_uint8", "SKIN_GREY"]

SKIN_GREY = np.array([0.78, 0.62, 0.54], np.float32)  # colour for models without albedo


@dataclass(frozen=True)
class RenderResult:
    """A rendered face.

    Attributes:
        image: ``[H, W, 3]`` uint8 RGB render on ``background``.
        mask: ``[H, W]`` uint8 0/255 face silhouette (the paper's M).
        depth: ``[H, W]`` float32 (-inf empty), larger = closer.
        tri_id: ``[H, W]`` int32 visible triangle (-1 empty).
        projected: ``[V, 3]`` float32 (x pixel, y pixel, depth).
        raster: the :class:`~deocc_core.render.raster.Raster` (barycentrics, for
            :func:`~deocc_core.render.raster.interpolate` of any per-vertex attribute).
    """

    image: npt.NDArray[np.uint8]
    mask: npt.NDArray[np.uint8]
    depth: npt.NDArray[np.float32]
    tri_id: npt.NDArray[np.int32]
    projected: npt.NDArray[np.float32]
    raster: Raster

    @cached_property
    def visible(self) -> npt.NDArray[np.bool_]:
        """``[V]`` bool: in view and not hidden (:func:`vertex_visibility`; computed once)."""
        return vertex_visibility(self.raster, self.projected)


def _shape_vertices(model: MorphableModel, params: FitParams) -> npt.NDArray[np.float32]:
    """Model-space vertices: the model's own mean (no copy; read only) when all coefs are 0."""
    if not np.any(params.id_coef) and not np.any(params.exp_coef):
        return model.mean
    return model.vertices(params.id_coef, params.exp_coef)


def render_face(
    model: MorphableModel,
    params: FitParams,
    height: int,
    width: int,
    *,
    colors: npt.NDArray[np.floating] | None = None,
    albedo_coef: npt.ArrayLike | None = None,
    sh: npt.ArrayLike | None = None,
    background: npt.NDArray[np.uint8] | None = None,
) -> RenderResult:
    """Render the model at the fitted parameters.

    Args:
        model: the morphable model.
        params: coefficients and pose (pixels of a ``height × width`` image).
        height: output rows (>= 1).
        width: output columns (>= 1).
        colors: ``[V, 3]`` per-vertex colours in [0, 1], unshaded; default the model's
            albedo (shaded with ``sh``), or a skin grey for models without one.
        albedo_coef: albedo coefficients when using the model's albedo.
        sh: ``[9]`` or ``[9, 3]`` SH light (camera space, see
            :func:`~deocc_core.render.shading.shade_sh`); default :data:`DEFAULT_SH`.
        background: ``[H, W, 3]`` uint8 under the face; default black.

    Returns:
        :class:`RenderResult`.

    Raises:
        InputError: a non-positive image size.
        ShapeError: ``sh`` not ``[9]`` or ``[9, 3]``.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> from deocc_core.morphable.params import Pose
        >>> m = load_model("starter")
        >>> p = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), Pose(0.25, 0, 0, 0, 32, 32))
        >>> r = render_face(m, p, 64, 64)
        >>> r.image.shape, bool(r.mask[32, 32] == 255), bool(r.mask[0, 0] == 0)
        ((64, 64, 3), True, True)
    """
    verts = _shape_vertices(model, params)
    proj = project(verts, params.pose)
    if int(height) < 1 or int(width) < 1:
        raise InputError(f"render_face: image size must be positive, got {height}x{width}")
    # the model's triangles were range-checked when it was built: no O(T) check per render
    raster = _rasterize(proj, model.triangles, int(height), int(width), True)
    out = (
        np.zeros((height, width, 3), np.uint8)
        if background is None
        else np.array(background, np.uint8, copy=True)
    )
    if colors is not None:
        cols = np.ascontiguousarray(colors, np.float32)
        _composite_kernel(raster.tri_id, raster.bary, raster.triangles, cols, out)
    else:
        albedo = model.albedo(albedo_coef)
        albedo = np.ascontiguousarray(SKIN_GREY if albedo is None else albedo, np.float32)
        light = np.asarray(DEFAULT_SH if sh is None else sh, np.float32)
        light = np.ascontiguousarray(
            check_array(light, "sh", (9,)).reshape(9, 1)
            if light.ndim == 1
            else check_array(light, "sh", (9, 3))
        )
        rot = rotation_matrix(params.pose.pitch, params.pose.yaw, params.pose.roll)
        normals, sign = _unit_normals(np.ascontiguousarray(verts, np.float32), raster.triangles)
        cols = np.empty_like(normals)
        _shade_kernel(
            normals.reshape(-1),
            albedo.reshape(-1),
            albedo.ndim == 2,
            rot.astype(np.float32) * np.float32(sign),  # R(-n) = -(R n) exactly
            light,
            cols.reshape(-1),
        )
        _composite_kernel(raster.tri_id, raster.bary, raster.triangles, cols, out)
    return RenderResult(out, raster.mask, raster.depth, raster.tri_id, proj, raster)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _interp(w0, w1, w2, ca, cb, cc):  # pragma: no cover - compiled
    """One channel at a pixel, as :func:`~deocc_core.render.raster.interpolate` computes it."""
    return w0 * ca + w1 * cb + w2 * cc


# no fastmath: v * 255 + 0.5 rounds twice, as the numpy expression it replaces
@numba.njit(cache=True, nogil=True)
def _to_uint8(v):  # pragma: no cover - compiled
    top = np.float32(255.0)
    return np.uint8(min(max(v * top + np.float32(0.5), np.float32(0.0)), top))


@numba.njit(cache=True, nogil=True)
def _write_pixel(y, x, t, bary, tris, colors, out):  # pragma: no cover - compiled
    a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
    w0, w1, w2 = bary[y, x, 0], bary[y, x, 1], bary[y, x, 2]
    for k in range(3):
        out[y, x, k] = _to_uint8(_interp(w0, w1, w2, colors[a, k], colors[b, k], colors[c, k]))


@numba.njit(cache=True, nogil=True)
def covered_to_uint8(values, tri_id, out):  # pragma: no cover - compiled
    """``out[covered] = uint8(clip(values * 255 + 0.5, 0, 255))`` in one pass.

    Bit for bit the numpy expression, without its masks, gathers and temporaries.
    ``values``: ``[H, W, 3]`` float32 in [0, 1] (e.g. :func:`~deocc_core.render.raster.
    interpolate` of vertex colours); ``tri_id``: ``[H, W]`` the raster's (covered: >= 0);
    ``out``: ``[H, W, 3]`` uint8, other pixels untouched.
    """
    h, w = tri_id.shape
    for y in range(h):
        for x in range(w):
            if tri_id[y, x] >= 0:
                for k in range(3):
                    out[y, x, k] = _to_uint8(values[y, x, k])


@numba.njit(cache=True, nogil=True)
def _composite_kernel(tri_id, bary, tris, colors, out):  # pragma: no cover - compiled
    """``out[covered] = uint8(interpolated colours * 255 + 0.5)``; other pixels untouched."""
    h, w = tri_id.shape
    for y in range(h):
        for x in range(w):
            t = tri_id[y, x]
            if t >= 0:
                _write_pixel(y, x, t, bary, tris, colors, out)


# fastmath and flat [3V] views: the loop vectorises (shading every vertex costs less than
# shading only the used ones one by one); colours may differ from shade_sh's in the last bit
@numba.njit(cache=True, nogil=True, fastmath=True)
def _shade_kernel(normals, albedo, per_vertex, rot, sh, out):  # pragma: no cover - compiled
    """``out = clip(albedo * (sh_basis(rot n) @ sh), 0, 1)`` per vertex, as shade_sh computes it.

    ``normals``, ``out``: ``[3V]`` xyz-interleaved; ``albedo``: ``[3V]`` (``per_vertex``) or
    one colour ``[3]``; ``rot``: ``[3, 3]``; ``sh``: ``[9, 1]`` (grey) or ``[9, 3]``.
    """
    rt = (rot[0, 0], rot[0, 1], rot[0, 2], rot[1, 0], rot[1, 1], rot[1, 2], rot[2, 0])
    rt = rt + (rot[2, 1], rot[2, 2])
    g1 = 0 if sh.shape[1] == 1 else 1
    g2 = 0 if sh.shape[1] == 1 else 2
    lp = (sh[0, 0], sh[1, 0], sh[2, 0], sh[3, 0], sh[4, 0], sh[5, 0], sh[6, 0], sh[7, 0])
    lq = (sh[0, g1], sh[1, g1], sh[2, g1], sh[3, g1], sh[4, g1], sh[5, g1], sh[6, g1])
    lu = (sh[0, g2], sh[1, g2], sh[2, g2], sh[3, g2], sh[4, g2], sh[5, g2], sh[6, g2])
    lp, lq, lu = lp + (sh[8, 0],), lq + (sh[7, g1], sh[8, g1]), lu + (sh[7, g2], sh[8, g2])
    # two loops, each with a fixed albedo stride (a stride known only at run time keeps
    # the loop scalar)
    if per_vertex:
        for i in range(normals.shape[0] // 3):
            _shade_one(normals, albedo, 3 * i, i, rt, lp, lq, lu, out)
    else:
        for i in range(normals.shape[0] // 3):
            _shade_one(normals, albedo, 0, i, rt, lp, lq, lu, out)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _shade_one(normals, albedo, a, i, rt, lp, lq, lu, out):  # pragma: no cover - compiled
    """Vertex ``i`` of :func:`_shade_kernel`, its albedo at ``albedo[a : a + 3]``."""
    c1 = np.float32(2.0 / 3.0)
    c2 = np.float32(0.25)
    half, three = np.float32(0.5), np.float32(3.0)
    zero, one = np.float32(0.0), np.float32(1.0)
    mx, my, mz = normals[3 * i], normals[3 * i + 1], normals[3 * i + 2]
    x = rt[0] * mx + rt[1] * my + rt[2] * mz
    y = rt[3] * mx + rt[4] * my + rt[5] * mz
    z = rt[6] * mx + rt[7] * my + rt[8] * mz
    b1, b2, b3 = c1 * y, c1 * z, c1 * x
    b4, b5 = c2 * x * y, c2 * y * z
    b6 = c2 * half * (three * z * z - one)
    b7, b8 = c2 * x * z, c2 * half * (x * x - y * y)
    for k, s in ((0, lp), (1, lq), (2, lu)):
        lk = (
            s[0] + b1 * s[1] + b2 * s[2] + b3 * s[3] + b4 * s[4]
            + b5 * s[5] + b6 * s[6] + b7 * s[7] + b8 * s[8]
        )  # fmt: skip
        out[3 * i + k] = min(max(albedo[a + k] * lk, zero), one)
