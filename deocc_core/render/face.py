"""Render a fitted 3DMM face: shaded image, silhouette mask M, visibility.

``render_face`` is the composition ``project → rasterize → vertex_normals → shade_sh →
interpolate → uint8`` of the public functions, fused where it pays: the vertices are
shaded lazily, only those of triangles that won a pixel (about half of the BFM mesh at
256 px), inside the compositing loop that interpolates straight to uint8; vertex
visibility is computed on first access. Numerically the image equals that composition to
float rounding (a pixel may differ by one uint8 level; tests/render/test_render.py checks).
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
from deocc_core.render.shading import DEFAULT_SH, _shade_vertex, _shading_constants, _unit_normals

__all__ = ["RenderResult", "render_face", "SKIN_GREY"]

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
        albedo = np.broadcast_to(SKIN_GREY if albedo is None else albedo, verts.shape)
        light = np.asarray(DEFAULT_SH if sh is None else sh, np.float32)
        light = np.ascontiguousarray(
            check_array(light, "sh", (9,)).reshape(9, 1)
            if light.ndim == 1
            else check_array(light, "sh", (9, 3))
        )
        rot = rotation_matrix(params.pose.pitch, params.pose.yaw, params.pose.roll)
        normals, sign = _unit_normals(np.ascontiguousarray(verts, np.float32), raster.triangles)
        _shade_composite_kernel(
            raster.tri_id,
            raster.bary,
            raster.triangles,
            normals,
            albedo,
            rot.astype(np.float32) * np.float32(sign),  # R(-n) = -(R n) exactly
            light,
            out,
        )
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
def _composite_kernel(tri_id, bary, tris, colors, out):  # pragma: no cover - compiled
    """``out[covered] = uint8(interpolated colours * 255 + 0.5)``; other pixels untouched."""
    h, w = tri_id.shape
    for y in range(h):
        for x in range(w):
            t = tri_id[y, x]
            if t >= 0:
                _write_pixel(y, x, t, bary, tris, colors, out)


@numba.njit(cache=True, nogil=True)
def _shade_composite_kernel(
    tri_id, bary, tris, normals, albedo, rot, sh, out
):  # pragma: no cover - compiled
    """:func:`_composite_kernel` with vertex colours shaded on first use (SH, as shade_sh)."""
    h, w = tri_id.shape
    colors = np.empty(normals.shape, np.float32)
    done = np.zeros(normals.shape[0], np.bool_)
    rt, light = _shading_constants(rot, sh)
    for y in range(h):
        for x in range(w):
            t = tri_id[y, x]
            if t < 0:
                continue
            for j in range(3):
                v = tris[t, j]
                if not done[v]:
                    _shade_vertex(albedo, normals, v, rt, light, colors)
                    done[v] = True
            _write_pixel(y, x, t, bary, tris, colors, out)
