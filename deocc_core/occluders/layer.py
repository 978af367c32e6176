"""Render an occluder mesh with the fitted camera, against the head's depth, lit by the photo.

The mesh is rasterized (our Z-buffer rasterizer, two-sided) only inside its own bounding
box, at ``ss`` × ``ss`` sub-samples per pixel for anti-aliased coverage. A sub-sample is
visible when it is in front of the reference depth (the face render where the face
covers, else the skull/neck/ear proxies), so the far temple, the far ear loop and the far
side of a scarf hide behind the head at any pose. Visible pixels are shaded once (at the
first visible sub-sample): second-order SH diffuse light (the photo's), a Blinn-Phong lobe
toward the SH's dominant direction, and a mirror reflection of a simple environment for
glossy materials (lenses, cups).

The result is an :class:`ObjectLayer` in premultiplied form: ``out = bg * (1 - opacity) +
emission``; ``opacity`` is per channel so tinted lenses filter the face behind them.

Convention:
    Pixel coordinates as :mod:`deocc_core.render.raster` (x right, y down, centres at
    integers, depth larger = closer). SH light in camera space (x right, y up, z toward the
    viewer), order of :func:`deocc_core.render.shading.sh_basis`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numba
import numpy as np
import numpy.typing as npt

from deocc_core.morphable.camera import project
from deocc_core.morphable.params import Pose
from deocc_core.occluders.mesh import Mesh
from deocc_core.render.raster import rasterize

__all__ = ["ObjectLayer", "SceneLight", "scene_light", "render_layer", "SS_MAX_AREA"]

F32 = npt.NDArray[np.float32]
SS_MAX_AREA = 20000  # bounding-box pixels up to which objects get 2x2 sub-samples


@dataclass(frozen=True)
class SceneLight:
    """The photo's light as the occluders use it.

    Attributes:
        sh: ``[9, 3]`` float32 SH irradiance coefficients (camera space).
        direction: ``[3]`` unit direction toward the dominant light (camera space).
        direct: strength of the directional part (irradiance at a facing normal).
        ambient: the uniform part.
    """

    sh: F32
    direction: F32
    direct: float
    ambient: float


def scene_light(sh: npt.ArrayLike) -> SceneLight:
    """Split SH coefficients (``[9]`` or ``[9, 3]``) into ambient + one directional light.

    Inverts :func:`deocc_core.render.shading.light_sh` on the luminance: band 1 holds
    ``0.75 * strength * direction``, band 0 ``ambient + 0.25 * strength``.

    Example:
        >>> from deocc_core.render.shading import light_sh
        >>> lt = scene_light(light_sh([1, 0, 1], 0.5, 0.4))
        >>> [round(float(v), 3) for v in lt.direction], round(lt.direct, 3), round(lt.ambient, 3)
        ([0.707, 0.0, 0.707], 0.4, 0.5)
    """
    s = np.asarray(sh, np.float32)
    s = np.repeat(s.reshape(9, 1), 3, 1) if s.ndim == 1 else s.reshape(9, 3)
    lum = s @ np.float32([0.299, 0.587, 0.114])
    band1 = np.array([lum[3], lum[1], lum[2]], np.float64)  # x, y, z
    strength = float(np.linalg.norm(band1) / 0.75)
    d = band1 / max(np.linalg.norm(band1), 1e-9) if strength > 1e-6 else np.array([0, 0, 1.0])
    return SceneLight(
        s.astype(np.float32),
        d.astype(np.float32),
        strength,
        max(float(lum[0]) - 0.25 * strength, 0.0),
    )


@dataclass(frozen=True)
class ObjectLayer:
    """A rendered occluder inside its box ``[y0:y0+h, x0:x0+w]`` of the image.

    Attributes:
        x0, y0: top-left pixel of the box.
        coverage: ``[h, w]`` float32 in [0, 1], fraction of the pixel the object covers.
        opacity: ``[h, w, 3]`` float32, coverage × (1 - transmission), per channel.
        emission: ``[h, w, 3]`` float32, premultiplied radiance (0..~1).
        height: ``[h, w]`` float32, the object's height above the head surface behind
            it, pixels (0 where uncovered or nothing behind it).
    """

    x0: int
    y0: int
    coverage: F32
    opacity: F32
    emission: F32
    height: F32

    @property
    def shape(self) -> tuple[int, int]:
        """(h, w) of the box."""
        return self.coverage.shape  # type: ignore[return-value]


@numba.njit(cache=True, nogil=True)
def _interp_samples(tri, bary, tris, attr):  # pragma: no cover - compiled
    """``[P, C]`` attributes of samples on triangles ``tri`` at barycentrics ``bary``."""
    out = np.empty((tri.shape[0], attr.shape[1]), np.float32)
    for p in range(tri.shape[0]):
        t = tri[p]
        a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
        w0, w1, w2 = bary[p, 0], bary[p, 1], bary[p, 2]
        for k in range(attr.shape[1]):
            out[p, k] = w0 * attr[a, k] + w1 * attr[b, k] + w2 * attr[c, k]
    return out


@numba.njit(cache=True, nogil=True, fastmath=True)
def _shade_kernel(a, rot, sh, ldir, direct, ambient, env_c, env_s):  # pragma: no cover
    """Per-sample shading from interpolated attributes ``a`` [P, 15] (see Mesh.attributes)."""
    p_n = a.shape[0]
    colour = np.empty((p_n, 3), np.float32)
    hx, hy, hz = ldir[0], ldir[1], ldir[2] + 1.0
    hn = np.sqrt(hx * hx + hy * hy + hz * hz)
    hx, hy, hz = hx / hn, hy / hn, hz / hn
    base = ambient + 0.25 * direct
    c1 = np.float32(2.0 / 3.0)
    c2 = np.float32(0.25)
    for i in range(p_n):
        mx, my, mz = a[i, 0], a[i, 1], a[i, 2]
        x = rot[0, 0] * mx + rot[0, 1] * my + rot[0, 2] * mz
        y = rot[1, 0] * mx + rot[1, 1] * my + rot[1, 2] * mz
        z = rot[2, 0] * mx + rot[2, 1] * my + rot[2, 2] * mz
        nn = np.sqrt(x * x + y * y + z * z) + 1e-9
        x, y, z = x / nn, y / nn, z / nn
        if z < 0:  # two-sided: the side toward the camera
            x, y, z = -x, -y, -z
        b1, b2, b3 = c1 * y, c1 * z, c1 * x
        b4, b5 = c2 * x * y, c2 * y * z
        b6 = c2 * 0.5 * (3 * z * z - 1)
        b7, b8 = c2 * x * z, c2 * 0.5 * (x * x - y * y)
        gloss, shin, f0 = a[i, 6], a[i, 7], a[i, 8]
        nh = max(x * hx + y * hy + z * hz, 0.0)
        spec = direct * gloss * nh**shin * min((shin + 8) / 40, 2.0)
        # mirror of the view direction (0, 0, 1) about n, and a sky/window environment
        rx, ry, rz = 2 * z * x, 2 * z * y, 2 * z * z - 1
        up = ry * env_c + rx * env_s
        up = min(max(up + 0.15, 0.0), 1.0)
        sky = base * (0.3 + 0.55 * up**0.7)
        cosl = max(rx * ldir[0] + ry * ldir[1] + rz * ldir[2], 0.0)
        env = sky + direct * 0.8 * cosl**32
        fres = f0 + (1 - f0) * (1 - z) ** 5 * min(f0 * 10, 1.0)
        for k in range(3):
            irr = (
                sh[0, k] + b1 * sh[1, k] + b2 * sh[2, k] + b3 * sh[3, k] + b4 * sh[4, k]
                + b5 * sh[5, k] + b6 * sh[6, k] + b7 * sh[7, k] + b8 * sh[8, k]
            )  # fmt: skip
            tint = 1.03 if k == 2 else 1.0
            colour[i, k] = a[i, 3 + k] * max(irr, 0.0) + spec + env * fres * tint
    return colour


def _shade(
    mesh: Mesh,
    tri: npt.NDArray[np.int32],
    bary: F32,
    rotation: np.ndarray,
    light: SceneLight,
    env_tilt: float,
) -> tuple[F32, F32]:
    """Colour and transmission ``[P, 3]`` of the samples on triangles ``tri`` at ``bary``."""
    a = _interp_samples(
        np.ascontiguousarray(tri, np.int32),
        np.ascontiguousarray(bary, np.float32),
        mesh.triangles,
        mesh.attributes(),
    )
    tex_id = mesh.tri_texture[tri]
    if mesh.textures and (tex_id >= 0).any():
        for k, tex in enumerate(mesh.textures):
            sel = tex_id == k
            if not sel.any():
                continue
            th, tw = tex.image.shape[:2]
            u = np.mod(a[sel, 12] / tex.mm_per_texel, tw).astype(np.float32)
            v = np.mod(a[sel, 13] / tex.mm_per_texel, th).astype(np.float32)
            texel = cv2.remap(
                tex.image, u[None], v[None], cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP
            )[0]
            a[sel, 3:6] *= texel
    colour = _shade_kernel(
        a,
        np.ascontiguousarray(rotation, np.float32),
        np.ascontiguousarray(light.sh, np.float32),
        np.ascontiguousarray(light.direction, np.float32),
        np.float32(light.direct),
        np.float32(light.ambient),
        np.float32(np.cos(env_tilt)),
        np.float32(np.sin(env_tilt)),
    )
    return colour, np.ascontiguousarray(a[:, 9:12])


def render_layer(
    mesh: Mesh,
    pose: Pose,
    rotation: np.ndarray,
    ref_depth: F32,
    light: SceneLight,
    *,
    ss: int | None = None,
    depth_tolerance: float = 0.5,
    env_tilt: float = 0.0,
) -> ObjectLayer | None:
    """Rasterize, depth-test and shade an occluder mesh in the image frame.

    Args:
        mesh: the occluder, model space (mm), normals filled in.
        pose: the fitted camera.
        rotation: ``[3, 3]`` the pose's rotation matrix.
        ref_depth: ``[H, W]`` float32 depth of the head (larger = closer, -inf empty).
        light: the photo's light.
        ss: sub-samples per pixel side (coverage anti-aliasing); default 2 for objects up to
            :data:`SS_MAX_AREA` pixels of bounding box, else 1 (big objects have long
            smooth edges that the photo's blur hides; thin frames need the sub-samples).
        depth_tolerance: mm an object point may sit behind the head surface and still show
            (absorbs the mesh's facets where objects rest on the skin).
        env_tilt: rotation of the reflected environment, radians (variety in lens reflections).

    Returns:
        The :class:`ObjectLayer`, or None when nothing is visible in the frame.

    Example:
        >>> from deocc_core.occluders.mesh import superellipsoid
        >>> from deocc_core.render.shading import DEFAULT_SH
        >>> m = superellipsoid((10, 10, 10)).with_normals()
        >>> ref = np.full((64, 64), -np.inf, np.float32)
        >>> lay = render_layer(m, Pose(2, 0, 0, 0, 32, 32), np.eye(3), ref, scene_light(DEFAULT_SH))
        >>> lay.coverage.shape, float(lay.coverage.max())
        ((43, 43), 1.0)
    """
    h_img, w_img = ref_depth.shape
    proj = project(mesh.vertices, pose)
    x0 = max(int(np.floor(proj[:, 0].min())) - 1, 0)
    y0 = max(int(np.floor(proj[:, 1].min())) - 1, 0)
    x1 = min(int(np.ceil(proj[:, 0].max())) + 1, w_img - 1)
    y1 = min(int(np.ceil(proj[:, 1].max())) + 1, h_img - 1)
    if x1 < x0 or y1 < y0:
        return None
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    if ss is None:
        ss = 2 if bw * bh <= SS_MAX_AREA else 1
    sub = proj.copy()
    sub[:, 0] = (proj[:, 0] - x0 + 0.5) * ss - 0.5
    sub[:, 1] = (proj[:, 1] - y0 + 0.5) * ss - 0.5
    ras = rasterize(sub, mesh.triangles, bh * ss, bw * ss, cull_backfaces=False)
    ref = np.ascontiguousarray(ref_depth[y0 : y1 + 1, x0 : x1 + 1])
    tol = np.float32(depth_tolerance * pose.scale)
    coverage, sy, sx = _resolve(ras.tri_id, ras.depth, ref, tol, ss)
    if sy.size == 0:
        return None
    py, px = sy // ss, sx // ss
    tri = ras.tri_id[sy, sx]
    colour, trans = _shade(mesh, tri, ras.bary[sy, sx], rotation, light, env_tilt)
    cov = coverage[py, px][:, None]
    opacity = np.zeros((bh, bw, 3), np.float32)
    emission = np.zeros((bh, bw, 3), np.float32)
    opacity[py, px] = cov * (1 - trans)
    emission[py, px] = cov * colour
    height = np.zeros((bh, bw), np.float32)
    behind = ref[py, px]
    height[py, px] = np.where(np.isfinite(behind), np.maximum(ras.depth[sy, sx] - behind, 0), 0)
    return ObjectLayer(x0, y0, coverage, opacity, emission, height)


@numba.njit(cache=True, nogil=True)
def _resolve_kernel(tri_id, depth, ref, tol, ss, coverage, sy, sx):  # pragma: no cover
    """Depth-test sub-samples against ``ref`` (per pixel).

    Fills the coverage and each pixel's first visible sub-sample; returns the number of
    covered pixels (their samples in sy, sx).
    """
    bh, bw = ref.shape
    n = 0
    inv = np.float32(1.0 / (ss * ss))
    for y in range(bh):
        for x in range(bw):
            r = ref[y, x] - tol
            cnt = 0
            fy = -1
            fx = -1
            for j in range(ss):
                for i in range(ss):
                    yy = y * ss + j
                    xx = x * ss + i
                    if tri_id[yy, xx] >= 0 and depth[yy, xx] > r:
                        cnt += 1
                        if fy < 0:
                            fy = yy
                            fx = xx
            if cnt > 0:
                coverage[y, x] = cnt * inv
                sy[n] = fy
                sx[n] = fx
                n += 1
    return n


def _resolve(
    tri_id: npt.NDArray[np.int32], depth: F32, ref: F32, tol: np.float32, ss: int
) -> tuple[F32, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    bh, bw = ref.shape
    coverage = np.zeros((bh, bw), np.float32)
    sy = np.empty(bh * bw, np.int64)
    sx = np.empty(bh * bw, np.int64)
    n = _resolve_kernel(tri_id, depth, ref, tol, ss, coverage, sy, sx)
    return coverage, sy[:n], sx[:n]
