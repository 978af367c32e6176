"""Render a fitted 3DMM face: shaded image, silhouette mask M, visibility."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from deocc_core.morphable.camera import project, rotation_matrix
from deocc_core.morphable.model import MorphableModel
from deocc_core.morphable.params import FitParams
from deocc_core.render.raster import interpolate, rasterize, vertex_visibility
from deocc_core.render.shading import DEFAULT_SH, shade_sh, vertex_normals

__all__ = ["RenderResult", "render_face", "interpolate", "SKIN_GREY"]

SKIN_GREY = np.array([0.78, 0.62, 0.54], np.float32)  # colour for models without albedo


@dataclass(frozen=True)
class RenderResult:
    """Attributes:
    image: ``[H, W, 3]`` uint8 RGB render on ``background``.
    mask: ``[H, W]`` uint8 0/255 face silhouette (the paper's M).
    depth: ``[H, W]`` float32 (-inf empty). tri_id: ``[H, W]`` int32 (-1 empty).
    projected: ``[V, 3]`` float32 (x, y, depth). visible: ``[V]`` bool (in view, not hidden).
    """

    image: npt.NDArray[np.uint8]
    mask: npt.NDArray[np.uint8]
    depth: npt.NDArray[np.float32]
    tri_id: npt.NDArray[np.int32]
    projected: npt.NDArray[np.float32]
    visible: npt.NDArray[np.bool_]


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
        colors: ``[V, 3]`` per-vertex colours in [0, 1], unshaded; default the model's
            albedo (shaded with ``sh``), or a skin grey for models without one.
        albedo_coef: albedo coefficients when using the model's albedo.
        sh: ``[9]`` or ``[9, 3]`` SH light; default :data:`DEFAULT_SH`.
        background: ``[H, W, 3]`` uint8 under the face; default black.

    Returns:
        :class:`RenderResult`.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> from deocc_core.morphable.params import Pose
        >>> m = load_model("starter")
        >>> p = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), Pose(0.25, 0, 0, 0, 32, 32))
        >>> r = render_face(m, p, 64, 64)
        >>> r.image.shape, bool(r.mask[32, 32] == 255), bool(r.mask[0, 0] == 0)
        ((64, 64, 3), True, True)
    """
    verts = model.vertices(params.id_coef, params.exp_coef)
    proj = project(verts, params.pose)
    raster = rasterize(proj, model.triangles, height, width)
    if colors is None:
        albedo = model.albedo(albedo_coef)
        rot = rotation_matrix(params.pose.pitch, params.pose.yaw, params.pose.roll)
        normals = vertex_normals(verts, model.triangles)  # model space; rotated inside shade_sh
        colors = shade_sh(
            SKIN_GREY if albedo is None else albedo,
            normals,
            DEFAULT_SH if sh is None else sh,
            rotation=rot,
        )
    cov = raster.covered
    out = (
        np.zeros((height, width, 3), np.uint8)
        if background is None
        else np.array(background, np.uint8, copy=True)
    )
    out[cov] = np.clip(
        interpolate(raster, np.asarray(colors, np.float32))[cov] * 255.0 + 0.5, 0, 255
    ).astype(np.uint8)
    return RenderResult(
        out, raster.mask, raster.depth, raster.tri_id, proj, vertex_visibility(raster, proj)
    )
