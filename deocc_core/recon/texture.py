"""Unwrap a face photo into the model's UV texture map (for a UV-textured OBJ).

Each texel of the map belongs to one mesh triangle (the mesh rasterized in UV space); its
barycentrics give its position in the photo (the projected vertices interpolated) and its
depth. A texel is *visible* when that photo pixel shows this very surface: inside the
face's silhouette and within ``depth_tolerance`` of the photo raster's depth there (so the
far side of a turned head, or a cheek behind the nose, is not painted with the nose).
Visible texels sample the photo (bilinear); the others are filled by pull-push (the mean of
the visible texels nearby, coarser and coarser), which also bleeds the colours past the
UV charts' edges so mipmapped viewers show no dark seams.

Convention:
    UV as :mod:`deocc_core.recon.uv` (v up); the map's row 0 is v = 1 (the top of the image
    file, as OBJ viewers read ``map_Kd``). Projected vertices as the rasterizer's (x, y
    pixels, y down; depth larger = closer).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.render.raster import Raster, interpolate, rasterize

__all__ = ["UVTexture", "uv_texture", "pull_push_fill"]


@dataclass(frozen=True)
class UVTexture:
    """A face's texture map.

    Attributes:
        image: ``[T, T, 3]`` uint8 RGB texture (every texel filled).
        visible: ``[T, T]`` bool texels sampled from the photo.
        chart: ``[T, T]`` bool texels covered by a mesh triangle.
    """

    image: npt.NDArray[np.uint8]
    visible: npt.NDArray[np.bool_]
    chart: npt.NDArray[np.bool_]

    @property
    def coverage(self) -> float:
        """Share of the chart's texels sampled from the photo."""
        return float(self.visible.sum() / max(int(self.chart.sum()), 1))


def pull_push_fill(
    image: npt.NDArray[np.floating], weight: npt.NDArray[np.floating]
) -> npt.NDArray[np.float32]:
    """Fill the pixels of zero weight with weighted means of their surroundings (pull-push).

    Pull: halve the image (2x2 weighted means) until it is one pixel. Push: from the
    coarsest level down, a pixel keeps its own value in proportion to its weight (capped at
    1) and takes the coarser level, upsampled bilinearly, for the rest.

    Args:
        image: ``[H, W, C]`` values.
        weight: ``[H, W]`` weights >= 0 (0 = unknown).

    Returns:
        ``[H, W, C]`` float32; pixels of weight >= 1 unchanged.

    Example:
        >>> img = np.zeros((4, 4, 1)); img[0, 0] = 8.0
        >>> w = np.zeros((4, 4)); w[0, 0] = 1.0
        >>> float(pull_push_fill(img, w)[3, 3, 0])
        8.0
    """
    img = np.asarray(image, np.float32)
    w = np.asarray(weight, np.float32)
    levels = [(img * w[..., None], w)]
    while max(levels[-1][1].shape) > 1:
        c, ww = levels[-1]
        h, wd = ww.shape
        ph, pw = h % 2, wd % 2  # pad odd sizes by repeating the last row / column (weight 0)
        c = np.pad(c, ((0, ph), (0, pw), (0, 0)))
        ww = np.pad(ww, ((0, ph), (0, pw)))
        c = c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2, -1).sum((1, 3))
        ww = ww.reshape(ww.shape[0] // 2, 2, ww.shape[1] // 2, 2).sum((1, 3))
        levels.append((c, ww))
    c, ww = levels[-1]
    val = c / np.maximum(ww, 1e-12)[..., None]
    for c, ww in reversed(levels[:-1]):
        h, wd = ww.shape
        hv, wv = val.shape[:2]
        up = cv2.resize(val, (2 * wv, 2 * hv), interpolation=cv2.INTER_LINEAR)[:h, :wd]
        up = up.reshape(h, wd, -1)
        own = c / np.maximum(ww, 1e-12)[..., None]
        a = np.minimum(ww, 1.0)[..., None]
        val = a * own + (1 - a) * up
    return val.astype(np.float32)


def uv_texture(
    image: npt.NDArray[np.uint8],
    projected: npt.NDArray[np.floating],
    raster: Raster,
    uv: npt.NDArray[np.floating],
    size: int = 512,
    *,
    depth_tolerance: float | None = None,
) -> UVTexture:
    """Unwrap the photo seen by a fitted mesh into its UV map (module docstring).

    Args:
        image: ``[H, W, 3]`` uint8 RGB photo (crop) the mesh was fitted in.
        projected: ``[V, 3]`` the mesh's projected vertices in that photo.
        raster: the mesh's raster in that photo (its depth decides visibility).
        uv: ``[V, 2]`` texture coordinates in [0, 1], v up.
        size: texture side, texels.
        depth_tolerance: largest depth difference (px of the photo) between a texel's
            surface point and the photo's visible surface; default 2 % of the photo side.

    Returns:
        :class:`UVTexture`.

    Raises:
        ShapeError: arrays of mismatched shapes.

    Example:
        >>> v = np.array([[0, 0, 1], [0, 30, 1], [30, 0, 1]], np.float32)
        >>> tri = np.array([[0, 1, 2]], np.int32)
        >>> r = rasterize(v, tri, 32, 32)
        >>> t = uv_texture(np.full((32, 32, 3), 200, np.uint8), v, r,
        ...                np.array([[0, 1], [0, 0], [1, 1]], np.float32), 16)
        >>> t.image.shape, t.coverage > 0.9, int(t.image[15, 15, 0])
        ((16, 16, 3), True, 200)
    """
    img = check_array(np.asarray(image), "image", raster.tri_id.shape + (3,), np.uint8)
    h, w = img.shape[:2]
    proj = check_array(np.asarray(projected), "projected", (raster.n_vertices, 3))
    uvs = check_array(np.asarray(uv), "uv", (raster.n_vertices, 2)).astype(np.float32)
    tol = 0.02 * max(h, w) if depth_tolerance is None else float(depth_tolerance)
    texel = np.stack(
        [uvs[:, 0] * (size - 1), (1.0 - uvs[:, 1]) * (size - 1), np.zeros(len(uvs), np.float32)],
        1,
    )
    uv_raster = rasterize(texel, raster.triangles, size, size, cull_backfaces=False)
    chart = uv_raster.covered
    where = interpolate(uv_raster, np.asarray(proj, np.float32))  # [T, T, 3]: x, y, depth
    x, y, z = where[..., 0], where[..., 1], where[..., 2]
    xi = np.clip(np.rint(x), 0, w - 1).astype(np.int64)
    yi = np.clip(np.rint(y), 0, h - 1).astype(np.int64)
    inside = chart & (x > -0.5) & (x < w - 0.5) & (y > -0.5) & (y < h - 0.5)
    seen = raster.depth[yi, xi]
    visible = inside & np.isfinite(seen) & (np.abs(z - seen) <= tol)
    colours = cv2.remap(
        img,
        np.ascontiguousarray(x, np.float32),
        np.ascontiguousarray(y, np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    ).astype(np.float32)
    filled = pull_push_fill(colours, visible.astype(np.float32))
    out = np.clip(filled + 0.5, 0, 255).astype(np.uint8)
    return UVTexture(out, visible, chart)
