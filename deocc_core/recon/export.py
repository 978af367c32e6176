"""A face's 3D reconstruction as files: coarse and detailed meshes, textures, pictures (paper §5.4).

Per face, from a crop (the de-occluded output, or the occluded input for the comparison):

- ``<stem>.obj``: the fitted 3DMM mesh. With texture coordinates (deocc-face's and the Surrey
  model's own, or ``uv`` = a BFM_UV.mat for BFM models) it is UV-textured: ``<stem>.mtl`` +
  ``<stem>.png``, the crop unwrapped into the model's UV map
  (:func:`deocc_core.recon.texture.uv_texture`); otherwise its vertices carry the crop's
  colours. ``<stem>_view.png``: the mesh from a fixed three-quarter view, grey-shaded |
  textured (:mod:`deocc_core.recon.mesh_view`).
- with ``detail``: ``<stem>_detail.obj`` (+ ``_detail_view.png``), the depth refined by shape
  from shading (:func:`deocc_core.recon.sfs.refine_face`) as a per-pixel mesh coloured by
  the crop (:func:`deocc_core.recon.mesh.depth_mesh`), in the same model space as the
  coarse mesh.
- with ``compare_occluded``: the same from the occluded input (``<stem>_occluded.obj``, ...)
  and ``<stem>_compare.png``, the paper's Fig. 9: a row per input (occluded, de-occluded):
  crop | coarse mesh (shaded | textured) | detailed mesh (shaded | textured). Geometry
  differences come from the shading (SfS) and the texture; the coarse fit is the same in
  both rows, made from the same landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.face.prepare import FaceInput
from deocc_core.imageio import write_image
from deocc_core.morphable.model import MorphableModel
from deocc_core.options import option
from deocc_core.recon.mesh import DepthMesh, depth_mesh
from deocc_core.recon.mesh_view import MeshView, mesh_view, render_mesh
from deocc_core.recon.sfs import FaceDetail, SfSConfig, refine_face
from deocc_core.recon.texture import UVTexture, uv_texture
from deocc_core.recon.uv import load_uv
from deocc_core.render.obj import write_obj

__all__ = ["MeshConfig", "FaceMeshes", "reconstruct_face", "write_face_meshes", "vertex_colours"]


@dataclass(frozen=True)
class MeshConfig:
    """What :func:`write_face_meshes` writes (each field's help is its ``option`` metadata)."""

    detail: bool = option(
        False, "Also write the mesh refined by shape from shading (<stem>_detail.obj)."
    )
    compare_occluded: bool = option(
        False,
        "Also reconstruct from the occluded input and write <stem>_compare.png "
        "(occluded vs de-occluded geometry and texture, the paper's Fig. 9).",
    )
    uv: str | None = option(
        None,
        "Texture coordinates of the 3DMM mesh: 3DDFA_V2's configs/BFM_UV.mat for BFM models, "
        "or a .npy [V, 2] (v up).",
        default_help="the model's own (deocc-face, Surrey .bin), else per-vertex colours",
        path="file",
    )
    texture_size: int = option(512, "Side of the UV texture map.", units="px", min=32, max=8192)
    view_yaw: float = option(
        30.0, "Yaw of the mesh pictures (*_view.png).", units="degrees", min=-90, max=90
    )
    sfs: SfSConfig = field(default_factory=SfSConfig)


def vertex_colours(
    image: npt.NDArray[np.uint8],
    projected: npt.NDArray[np.floating],
    visible: npt.NDArray[np.bool_],
) -> npt.NDArray[np.float32]:
    """Per-vertex colours from an image: bilinear at visible vertices, their mean elsewhere.

    Args:
        image: ``[H, W, 3]`` uint8 RGB.
        projected: ``[V, 3]`` projected vertices (x, y pixels).
        visible: ``[V]`` bool.

    Returns:
        ``[V, 3]`` float32 in [0, 1].

    Example:
        >>> img = np.full((8, 8, 3), 255, np.uint8)
        >>> vertex_colours(img, np.zeros((2, 3)), np.array([True, False])).tolist()
        [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    h, w = image.shape[:2]
    n = len(projected)
    xy = np.zeros((-(-n // 1024) * 1024, 2), np.float32)  # remap maps: < 32767 rows
    xy[:n] = np.asarray(projected, np.float32)[:, :2]
    mx = np.clip(xy[:, 0], 0, w - 1).reshape(-1, 1024)
    my = np.clip(xy[:, 1], 0, h - 1).reshape(-1, 1024)
    col = cv2.remap(image, mx, my, cv2.INTER_LINEAR).reshape(-1, 3)[:n].astype(np.float32) / 255.0
    fill = col[visible].mean(0) if visible.any() else np.full(3, 0.5, np.float32)
    return np.where(visible[:, None], col, fill).astype(np.float32)


@dataclass(frozen=True)
class FaceMeshes:
    """One crop's reconstruction.

    Attributes:
        vertices: ``[V, 3]`` float32 the fitted 3DMM mesh, model space.
        triangles: ``[T, 3]`` int32.
        colors: ``[V, 3]`` float32 per-vertex colours in [0, 1] (always, for viewers).
        uv: ``[V, 2]`` texture coordinates or None. texture: the :class:`UVTexture` or None.
        detail: the SfS result or None. detail_mesh: its :class:`DepthMesh` or None.
        detail_colors: ``[N, 3]`` float32 the crop's colours at the detail mesh's pixels.
    """

    vertices: npt.NDArray[np.float32]
    triangles: npt.NDArray[np.int32]
    colors: npt.NDArray[np.float32]
    uv: npt.NDArray[np.float32] | None = None
    texture: UVTexture | None = None
    detail: FaceDetail | None = None
    detail_mesh: DepthMesh | None = None
    detail_colors: npt.NDArray[np.float32] | None = None


def reconstruct_face(
    image: npt.NDArray[np.uint8],
    face: FaceInput,
    model: MorphableModel,
    config: MeshConfig | None = None,
) -> FaceMeshes:
    """Coarse (textured) and, with ``config.detail``, SfS-detailed meshes of one crop.

    Args:
        image: ``[S, S, 3]`` uint8 RGB crop the face was fitted in (de-occluded or not).
        face: the prepared face (its fit, raster and projected vertices are used).
        model: its 3DMM.
        config: see :class:`MeshConfig`.

    Returns:
        :class:`FaceMeshes`.

    Raises:
        InputError: ``config.uv`` missing; too few face pixels for the light (detail).
        FormatError: texture coordinates that do not fit the model.

    Example:
        >>> from deocc_core.face.prepare import FaceInputConfig, prepare_face
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> lm = m.mean[m.landmarks68, :2] * [1, -1] + 150
        >>> f = prepare_face(np.full((300, 300, 3), 90, np.uint8), lm, m, FaceInputConfig(size=64))
        >>> r = reconstruct_face(f.render, f, m, MeshConfig(detail=True))
        >>> r.vertices.shape == (m.n_vertices, 3), r.detail_mesh.vertices.shape[1]
        (True, 3)
    """
    cfg = config or MeshConfig()
    rr, params = face.render_result, face.fit.params
    verts = model.vertices(params.id_coef, params.exp_coef)
    colors = vertex_colours(image, rr.projected, rr.visible)
    uv = load_uv(model, cfg.uv)
    tex = None
    if uv is not None:
        tex = uv_texture(image, rr.projected, rr.raster, uv, cfg.texture_size)
    detail = dmesh = dcol = None
    if cfg.detail:
        detail = refine_face(image, model, params, rr.raster, cfg.sfs)
        dmesh = depth_mesh(detail.sfs.depth, params.pose)
        px = dmesh.pixels
        dcol = image[px[:, 0], px[:, 1]].astype(np.float32) / 255.0
    return FaceMeshes(verts, model.triangles, colors, uv, tex, detail, dmesh, dcol)


def _write(stem: str, rec: FaceMeshes, view: MeshView) -> tuple[list[Path], list[np.ndarray]]:
    """The OBJ files and view PNGs of one reconstruction → (paths, [coarse view, detail view])."""
    paths = []
    if rec.texture is not None:
        obj = write_obj(
            f"{stem}.obj", rec.vertices, rec.triangles, uv=rec.uv, texture=rec.texture.image
        )
        paths += [obj, obj.with_suffix(".mtl"), obj.with_suffix(".png")]
        coarse = render_mesh(
            rec.vertices, rec.triangles, view, uv=rec.uv, texture=rec.texture.image
        )
    else:
        paths.append(write_obj(f"{stem}.obj", rec.vertices, rec.triangles, rec.colors))
        coarse = render_mesh(rec.vertices, rec.triangles, view, colors=rec.colors)
    paths.append(write_image(f"{stem}_view.png", coarse))
    views = [coarse]
    if rec.detail_mesh is not None:
        dm = rec.detail_mesh
        paths.append(write_obj(f"{stem}_detail.obj", dm.vertices, dm.triangles, rec.detail_colors))
        detail = render_mesh(dm.vertices, dm.triangles, view, colors=rec.detail_colors)
        paths.append(write_image(f"{stem}_detail_view.png", detail))
        views.append(detail)
    return paths, views


def _label(img: npt.NDArray[np.uint8], text: str) -> npt.NDArray[np.uint8]:
    """``img`` with ``text`` in white on a dark strip at its top left."""
    out = img.copy()
    scale = max(img.shape[0] / 512, 0.3)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    out[: h + base + 4, : w + 6] //= 3
    org = (3, h + 2)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def write_face_meshes(
    stem: str | Path,
    face: FaceInput,
    output: npt.NDArray[np.uint8],
    model: MorphableModel,
    config: MeshConfig | None = None,
) -> tuple[Path, ...]:
    """Reconstruct a de-occluded face (and its occluded input) and write the module's files.

    Args:
        stem: output path without suffix (``<out>/<photo>_face<k>``); its folder must exist.
        face: the prepared face (``face.crop`` is the occluded input).
        output: ``[S, S, 3]`` uint8 de-occluded crop.
        model: the 3DMM of the fit.
        config: see :class:`MeshConfig`.

    Returns:
        Every path written.

    Raises:
        InputError: a file could not be written, ``config.uv`` missing, or too few face
            pixels for the light estimate (detail).
        FormatError: texture coordinates that do not fit the model.
    """
    cfg = config or MeshConfig()
    stem = str(stem)
    deocc = reconstruct_face(output, face, model, cfg)
    view = mesh_view(deocc.vertices, yaw_deg=cfg.view_yaw, size=face.crop.shape[0])
    paths, views = _write(stem, deocc, view)
    if cfg.compare_occluded:
        occ = reconstruct_face(face.crop, face, model, cfg)
        occ_paths, occ_views = _write(f"{stem}_occluded", occ, view)
        paths += occ_paths
        rows = [
            np.concatenate([_label(face.crop, "occluded"), *occ_views], 1),
            np.concatenate([_label(output, "de-occluded"), *views], 1),
        ]
        paths.append(write_image(f"{stem}_compare.png", np.concatenate(rows, 0)))
    return tuple(paths)
