"""A mesh as a picture, from a fixed viewpoint: shaded geometry beside its colours.

So users see a reconstruction without a 3D viewer. Our rasterizer draws the mesh from a
three-quarter view (a yaw about the model's vertical axis); the left panel shades it grey
under a fixed light (the shape alone: detail shows as it would in a viewer), the right
panel shows its per-vertex colours or UV texture, unlit. Several meshes of one face (coarse
and detailed, from the occluded and the de-occluded photo) use one :class:`MeshView`, so
they are framed identically and compare pixel for pixel.

Convention:
    Model space as :mod:`deocc_core.morphable.params` (y up, z toward a frontal camera).
    The view rotates the model by R(pitch, yaw, 0) about the view's centre; positive yaw
    turns the face's nose toward the picture's right.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.morphable.camera import project, rotation_matrix
from deocc_core.morphable.params import Pose
from deocc_core.render.raster import interpolate, rasterize
from deocc_core.render.shading import light_sh, shade_sh, vertex_normals

__all__ = ["MeshView", "mesh_view", "render_mesh", "VIEW_LIGHT"]

#: the geometry panel's light: ambient plus a light from the upper left front (camera space)
VIEW_LIGHT = light_sh([-0.4, 0.5, 1.0], ambient=0.35, strength=0.75)
_GREY = np.array([0.8, 0.8, 0.8], np.float32)


@dataclass(frozen=True)
class MeshView:
    """A fixed viewpoint: the pose that maps model space to a ``size × size`` panel.

    Attributes:
        pose: weak-perspective pose (scale: panel px per model unit).
        size: panel side, px.
    """

    pose: Pose
    size: int


def mesh_view(
    vertices: npt.NDArray[np.floating],
    *,
    yaw_deg: float = 30.0,
    pitch_deg: float = 0.0,
    size: int = 256,
    margin: float = 0.08,
) -> MeshView:
    """The view that frames ``vertices`` (a reference mesh) from the given angles.

    Args:
        vertices: ``[V, 3]`` model-space vertices to frame (e.g. the fitted 3DMM mesh).
        yaw_deg: view yaw, degrees.
        pitch_deg: view pitch, degrees.
        size: panel side, px.
        margin: empty border, as a fraction of the panel side.

    Returns:
        :class:`MeshView`.

    Example:
        >>> v = np.random.default_rng(0).normal(size=(50, 3))
        >>> view = mesh_view(v, size=64)
        >>> p = project(v, view.pose)
        >>> bool(p[:, :2].min() >= 0 and p[:, :2].max() <= 63)
        True
    """
    v = check_array(np.asarray(vertices), "vertices", (None, 3)).astype(np.float64)
    pitch, yaw = np.radians(pitch_deg), np.radians(yaw_deg)
    rotated = v @ rotation_matrix(pitch, yaw, 0.0).T
    lo, hi = rotated[:, :2].min(0), rotated[:, :2].max(0)
    scale = (1 - 2 * margin) * (size - 1) / max(float((hi - lo).max()), 1e-9)
    centre = (lo + hi) / 2
    tx = (size - 1) / 2 - scale * centre[0]
    ty = (size - 1) / 2 + scale * centre[1]  # image y points down
    return MeshView(Pose(float(scale), float(pitch), float(yaw), 0.0, float(tx), float(ty)), size)


def render_mesh(
    vertices: npt.NDArray[np.floating],
    triangles: npt.NDArray[np.integer],
    view: MeshView,
    *,
    colors: npt.NDArray[np.floating] | None = None,
    uv: npt.NDArray[np.floating] | None = None,
    texture: npt.NDArray[np.uint8] | None = None,
    background: int = 255,
) -> npt.NDArray[np.uint8]:
    """Render a mesh: ``[grey shaded | coloured]`` panels side by side.

    Args:
        vertices: ``[V, 3]`` model space.
        triangles: ``[T, 3]`` counter-clockwise from the front.
        view: from :func:`mesh_view`.
        colors: ``[V, 3]`` per-vertex colours in [0, 1].
        uv: ``[V, 2]`` texture coordinates (v up), with ``texture``.
        texture: ``[Ht, Wt, 3]`` uint8 RGB; with ``uv`` it replaces ``colors``.
        background: grey level of empty pixels.

    Returns:
        ``[size, 2 · size, 3]`` uint8 RGB (one panel when neither colours nor a texture is
        given: ``[size, size, 3]``).

    Example:
        >>> v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
        >>> img = render_mesh(v, np.array([[0, 1, 2]]), mesh_view(v, yaw_deg=0, size=32),
        ...                   colors=np.tile([1.0, 0, 0], (3, 1)))
        >>> img.shape, img[12, 40].tolist()
        ((32, 64, 3), [255, 0, 0])
    """
    v = check_array(np.asarray(vertices), "vertices", (None, 3)).astype(np.float32)
    s = view.size
    proj = project(v, view.pose)
    r = rasterize(proj, np.asarray(triangles, np.int32), s, s)
    cov = r.covered
    rot = rotation_matrix(view.pose.pitch, view.pose.yaw, view.pose.roll)
    shaded = shade_sh(_GREY, vertex_normals(v, r.triangles), VIEW_LIGHT, rotation=rot)
    panels = [interpolate(r, shaded)]
    if uv is not None and texture is not None:
        tex = check_array(np.asarray(texture), "texture", (None, None, 3), np.uint8)
        th, tw = tex.shape[:2]
        uvs = check_array(np.asarray(uv), "uv", (len(v), 2)).astype(np.float32)
        where = interpolate(r, uvs)
        mx = np.ascontiguousarray(where[..., 0] * (tw - 1), np.float32)
        my = np.ascontiguousarray((1 - where[..., 1]) * (th - 1), np.float32)
        panels.append(cv2.remap(tex, mx, my, cv2.INTER_LINEAR).astype(np.float32) / 255.0)
    elif colors is not None:
        col = check_array(np.asarray(colors), "colors", (len(v), 3)).astype(np.float32)
        panels.append(interpolate(r, col))
    out = []
    for p in panels:
        img = np.full((s, s, 3), background, np.uint8)
        img[cov] = np.clip(p[cov] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        out.append(img)
    return np.concatenate(out, 1)
