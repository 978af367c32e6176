"""Shape from shading: detail on the fitted 3DMM depth from the photo's shading (paper §5.4).

The image model is Lambertian with second-order spherical harmonics, as everywhere in the
project (:mod:`deocc_core.render.shading`)::

    I_c(x, y) = ρ_c(x, y) · (Y(n(x, y)) · l_c)

Following Kemelmacher-Shlizerman & Basri (a reference shape gives light and albedo, the
shading then gives the detail):

1. light ``l`` from the photo and the *coarse* normals, with the shared robust estimator
   (:func:`deocc_core.render.light.estimate_face_light`), albedo ``ρ`` from the model's
   albedo (its coefficients fitted by the same estimator) or the skin field
   (:func:`deocc_core.render.skin.skin_field`) for shape-only models, scaled by the skin
   colour ``gain``;
2. the detailed depth ``z = z0 + δz`` (``z0``: the fitted 3DMM's depth map, first made
   consistent with its smooth interpolated normals: a mesh's depth map is flat per
   triangle, and its creases would print the triangulation into the detail) minimises, by
   half-quadratic splitting over a per-pixel gradient field ``g``::

       Σ w ‖I - ρ · Y(n(g)) · l‖² + β ‖g - ∇z‖² + β (‖δz‖² / ℓ² + s² ‖L δz‖²)

   alternating *refined normals* (per pixel, a damped Gauss-Newton step of the shading
   residual from the current surface, closed form 2×2) and their *integration to depth*
   with a smoothness prior toward the coarse shape (the screened, bending Poisson problem of
   :func:`deocc_core.recon.integrate.poisson_dct`: the correction ``δz`` reaches over ~ℓ px
   and is smoothed over ~s px). Outside the face the correction's gradient is 0, so the
   detail fades out at the silhouette; pixels without data (eyes, brows, lips, saturated
   or grazing) follow their neighbours;
3. the albedo under the refined normals, ``ρ = I / (Y(n) · l)`` (for inspection).

Convention:
    Depth maps and normals as in :mod:`deocc_core.recon.integrate`: pixel units, larger =
    closer, -inf outside the face; camera-space normals (x right, y UP, z toward the
    viewer). Colours in [0, 1] (the photo's encoded values, as the light estimator's).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.morphable.camera import rotation_matrix
from deocc_core.morphable.model import MorphableModel
from deocc_core.morphable.params import FitParams
from deocc_core.options import option
from deocc_core.recon.integrate import (
    depth_gradients,
    gradients_from_normals,
    normals_from_gradients,
    poisson_dct_solver,
)
from deocc_core.render.light import LightEstimate, estimate_face_light
from deocc_core.render.raster import Raster, interpolate
from deocc_core.render.shading import sh_basis, vertex_normals
from deocc_core.render.skin import skin_field

__all__ = ["SfSConfig", "SfSResult", "FaceDetail", "shape_from_shading", "refine_face"]

_C1, _C2 = 2.0 / 3.0, 0.25  # the Lambertian-convolved SH constants of sh_basis


@dataclass(frozen=True)
class SfSConfig:
    """Options of :func:`shape_from_shading` (lengths in px of a ``reference_size`` crop).

    Attributes:
        iterations: normal-refinement / integration rounds.
        coupling: β, the pull of the refined normals' gradients toward the current surface,
            relative to the shading term (colour units² per unit gradient²); larger = smaller,
            safer steps.
        reach_px: ℓ, how far the correction of the coarse depth may extend (its screening).
        smoothing_px: s, the scale the correction is smoothed over (thin-plate term).
        max_step: largest change of a pixel's surface gradient in one round.
        min_nz: pixels whose coarse normal faces the camera less than this get no data.
        erode_px: the face mask is eroded by this before taking data (silhouette pixels mix
            face and background).
        robust: weight the data by the light estimator's robust weights too (occluders,
            hair and highlights then keep the coarse shape); off by default, so that what the
            photo shows is what the detail follows (the paper's setting).
        reference_size: the crop side the px lengths are given for; they scale with the
            crop.
    """

    iterations: int = option(6, "SfS rounds (refine normals, integrate).", min=0, max=100)
    coupling: float = option(0.2, "SfS: pull of the refined normals toward the surface.", min=0)
    reach_px: float = option(
        24.0, "SfS: reach of the depth correction (px at 256).", units="px", min=0.5
    )
    smoothing_px: float = option(
        1.0, "SfS: smoothing of the depth correction (px at 256).", units="px", min=0
    )
    max_step: float = option(
        0.5, "SfS: largest change of a pixel's surface gradient per round.", min=0
    )
    min_nz: float = option(0.2, "SfS: pixels facing the camera less than this get no data.")
    erode_px: int = option(2, "SfS: erosion of the face mask before taking data.", units="px")
    robust: bool = option(False, "SfS: ignore what the light estimator flags as outliers.")
    reference_size: int = option(256, "SfS: crop side the px lengths are given for.", min=1)


@dataclass(frozen=True)
class SfSResult:
    """Output of :func:`shape_from_shading`.

    Attributes:
        depth: ``[H, W]`` float32 detailed depth (px, larger = closer), -inf outside.
        normals: ``[H, W, 3]`` float32 camera-space unit normals of the detail (0 outside).
        albedo: ``[H, W, 3]`` float32 ``I / shading`` in [0, 1] under the refined normals
            (0 outside).
        weights: ``[H, W]`` float32 data weight each pixel had, in [0, 1].
        residual_coarse: RMS shading residual over the data pixels under the coarse normals
            (colour units). residual: the same under the refined normals.
    """

    depth: npt.NDArray[np.float32]
    normals: npt.NDArray[np.float32]
    albedo: npt.NDArray[np.float32]
    weights: npt.NDArray[np.float32]
    residual_coarse: float
    residual: float


def _shading_and_jacobian(
    n: np.ndarray, u_norm: np.ndarray, albedo: np.ndarray, light: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shading ``[N, 3]`` and its derivatives ``d/dp``, ``d/dq`` ``[N, 3]`` at unit normals.

    ``n = (-p, q, 1) / |u|``; ``G = ρ (dY/dn)ᵀ l`` per channel, projected on the tangent plane:
    ``dn/dp = -(I - n nᵀ) e_x / |u|``, ``dn/dq = (I - n nᵀ) e_y / |u|``.
    """
    s = albedo * (sh_basis(n) @ light)
    x, y, z = n[:, 0:1], n[:, 1:2], n[:, 2:3]
    lc = light[None]  # [1, 9, 3]
    gx = _C1 * lc[:, 3] + _C2 * (y * lc[:, 4] + z * lc[:, 7] + x * lc[:, 8])
    gy = _C1 * lc[:, 1] + _C2 * (x * lc[:, 4] + z * lc[:, 5] - y * lc[:, 8])
    gz = _C1 * lc[:, 2] + _C2 * (y * lc[:, 5] + 3.0 * z * lc[:, 6] + x * lc[:, 7])
    gn = gx * x + gy * y + gz * z
    inv = albedo / u_norm[:, None]
    return s, -(gx - gn * x) * inv, (gy - gn * y) * inv


def _central(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central differences ``(∂x, ∂y)`` on the full grid (one-sided at the border)."""
    return np.gradient(d, axis=1), np.gradient(d, axis=0)


def shape_from_shading(
    image: npt.NDArray,
    depth: npt.NDArray[np.floating],
    normals: npt.NDArray[np.floating],
    albedo: npt.NDArray[np.floating],
    light: npt.NDArray[np.floating],
    weights: npt.NDArray[np.floating],
    config: SfSConfig | None = None,
) -> SfSResult:
    """Refine a coarse depth map with the image's shading (module docstring, step 2).

    Args:
        image: ``[H, W, 3]`` uint8 RGB, or float in [0, 1].
        depth: ``[H, W]`` coarse depth (px, larger = closer), -inf (or NaN) outside the face.
        normals: ``[H, W, 3]`` coarse camera-space unit normals (smooth: the fitted mesh's
            interpolated vertex normals, not the depth map's facets).
        albedo: ``[H, W, 3]`` albedo in [0, 1] (the light's reference albedo).
        light: ``[9, 3]`` SH light on that albedo (``I ≈ albedo · sh_basis(n) @ light``;
            :attr:`deocc_core.render.light.LightEstimate.coloured_sh`).
        weights: ``[H, W]`` data trust in [0, 1] (0: not used).
        config: see :class:`SfSConfig`.

    Returns:
        :class:`SfSResult`.

    Raises:
        ShapeError: arrays of mismatched shapes.

    Example:
        >>> y, x = np.mgrid[0:64, 0:64].astype(np.float32) - 31.5
        >>> z = np.sqrt(np.maximum(40.0**2 - x**2 - y**2, 0)); z[x**2 + y**2 > 30**2] = -np.inf
        >>> n = normals_from_gradients(*depth_gradients(z))
        >>> light = np.tile(np.array([0.6, 0.2, 0.3, 0.3, 0, 0, 0, 0, 0])[:, None], 3)
        >>> img = 0.5 * (sh_basis(n.reshape(-1, 3)) @ light).reshape(64, 64, 3)
        >>> r = shape_from_shading(img, z, n, np.full((64, 64, 3), 0.5), light,
        ...                        np.isfinite(z).astype(np.float32))
        >>> inside = np.isfinite(z)
        >>> r.depth.shape, bool(np.abs(r.depth[inside] - z[inside]).max() < 1.0)
        ((64, 64), True)
    """
    cfg = config or SfSConfig()
    z0 = check_array(np.asarray(depth), "depth", (None, None)).astype(np.float32)
    hw = z0.shape
    img = check_array(np.asarray(image), "image", hw + (3,))
    img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    n0 = check_array(np.asarray(normals), "normals", hw + (3,)).astype(np.float32)
    rho = check_array(np.asarray(albedo), "albedo", hw + (3,)).astype(np.float32)
    l_sh = check_array(np.asarray(light), "light", (9, 3)).astype(np.float32)
    w_in = check_array(np.asarray(weights), "weights", hw).astype(np.float32)

    mask = np.isfinite(z0)
    unit = max(hw) / float(cfg.reference_size)  # px lengths scale with the crop
    screen = 1.0 / (cfg.reach_px * unit) ** 2
    bending = (cfg.smoothing_px * unit) ** 2
    p0, q0 = gradients_from_normals(n0, cfg.min_nz)
    p0, q0 = np.where(mask, p0, 0.0), np.where(mask, q0, 0.0)
    w = np.clip(np.nan_to_num(w_in), 0.0, 1.0) * mask
    r_, g_, b_ = img[..., 0], img[..., 1], img[..., 2]  # channel by channel: no slow
    ok = (n0[..., 2] >= cfg.min_nz) & (r_ < 0.985) & (g_ < 0.985) & (b_ < 0.985)  # reductions
    ok &= np.maximum(np.maximum(r_, g_), b_) > 0.02
    ok &= (rho[..., 0] > 1e-3) & (rho[..., 1] > 1e-3) & (rho[..., 2] > 1e-3)
    w *= ok
    rows, cols = np.nonzero(w > 0)
    wv = w[rows, cols][:, None]
    iv, rv = img[rows, cols], rho[rows, cols]
    beta = max(float(cfg.coupling), 1e-6)

    integrate = poisson_dct_solver(hw, screen, bending)
    # the base: the coarse depth with the smooth normals' gradients (a mesh's depth map is
    # flat per triangle; its creases would print the triangulation into the detail)
    pz, qz = depth_gradients(np.where(mask, z0, 0.0), mask)
    base = z0 + integrate(np.where(mask, p0 - pz, 0.0), np.where(mask, q0 - qz, 0.0))
    dz = np.zeros(hw, np.float32)
    p0v, q0v, wv1 = p0[rows, cols], q0[rows, cols], wv[:, 0]
    wsum = max(3.0 * float(wv1.sum()), 1e-12)
    fmask = mask.astype(np.float32)
    res0 = res = 0.0
    for it in range(cfg.iterations + 1):
        dx, dy = _central(dz)
        tp, tq = p0v + dx[rows, cols], q0v + dy[rows, cols]
        u_norm = np.sqrt(1.0 + tp * tp + tq * tq)
        n = np.stack([-tp, tq, np.ones_like(tp)], 1) / u_norm[:, None]
        s, jp, jq = _shading_and_jacobian(n, u_norm, rv, l_sh)
        r = iv - s
        res = float(np.sqrt(np.dot(wv1, np.einsum("ij,ij->i", r, r)) / wsum))
        if it == 0:
            res0 = res
        if it == cfg.iterations:
            break
        # refined normals: per pixel (w JᵀJ + β I) step = w Jᵀ r, closed-form 2x2
        a = wv1 * np.einsum("ij,ij->i", jp, jp) + beta
        b = wv1 * np.einsum("ij,ij->i", jp, jq)
        c = wv1 * np.einsum("ij,ij->i", jq, jq) + beta
        fp, fq = wv1 * np.einsum("ij,ij->i", jp, r), wv1 * np.einsum("ij,ij->i", jq, r)
        det = a * c - b * b
        sp_, sq_ = (c * fp - b * fq) / det, (a * fq - b * fp) / det
        k = np.minimum(1.0, cfg.max_step / np.maximum(np.hypot(sp_, sq_), 1e-12))
        gx, gy = dx * fmask, dy * fmask
        gx[rows, cols] += k * sp_
        gy[rows, cols] += k * sq_
        # integration with the smoothness prior toward the coarse shape
        dz = integrate(gx, gy)

    dx, dy = _central(dz)
    normals_out = normals_from_gradients(p0 + dx, q0 + dy) * mask[..., None]
    shade = (sh_basis(normals_out.reshape(-1, 3)) @ l_sh).reshape(hw + (3,))
    alb = np.where(mask[..., None], np.clip(img / np.maximum(shade, 1e-3), 0, 1), 0.0)
    return SfSResult(
        np.where(mask, base + dz, -np.inf).astype(np.float32),
        normals_out.astype(np.float32),
        alb.astype(np.float32),
        w.astype(np.float32),
        res0,
        res,
    )


@dataclass(frozen=True)
class FaceDetail:
    """A face's coarse and detailed shape at its crop.

    Attributes:
        sfs: the :class:`SfSResult` (detailed depth, normals, albedo).
        coarse_depth: ``[H, W]`` float32 the fitted mesh's depth map (-inf outside M).
        coarse_normals: ``[H, W, 3]`` float32 its interpolated camera-space vertex normals.
        light: the light estimate (``coloured_sh`` is the SfS light).
    """

    sfs: SfSResult
    coarse_depth: npt.NDArray[np.float32]
    coarse_normals: npt.NDArray[np.float32]
    light: LightEstimate


def refine_face(
    image: npt.NDArray[np.uint8],
    model: MorphableModel,
    params: FitParams,
    raster: Raster,
    config: SfSConfig | None = None,
) -> FaceDetail:
    """Light, albedo and detailed depth of a fitted face (module docstring, steps 1-3).

    Args:
        image: ``[H, W, 3]`` uint8 RGB crop the face was fitted in.
        model: the 3DMM.
        params: the fit.
        raster: the fit's raster at the crop (:attr:`deocc_core.render.face.RenderResult.raster`).
        config: see :class:`SfSConfig`.

    Returns:
        :class:`FaceDetail`.

    Raises:
        InputError: too few usable face pixels for the light estimate.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> from deocc_core.morphable.params import Pose
        >>> from deocc_core.render.face import render_face
        >>> m = load_model("starter")
        >>> p = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), Pose(0.3, 0, 0.3, 0, 48, 48))
        >>> r = render_face(m, p, 96, 96)
        >>> d = refine_face(r.image, m, p, r.raster)
        >>> d.sfs.depth.shape, bool(np.isfinite(d.sfs.depth).sum() == (r.mask > 0).sum())
        ((96, 96), True)
    """
    cfg = config or SfSConfig()
    verts = model.vertices(params.id_coef, params.exp_coef)
    rot = rotation_matrix(params.pose.pitch, params.pose.yaw, params.pose.roll).astype(np.float32)
    normals = vertex_normals(verts, model.triangles) @ rot.T
    field = skin_field(model)
    albedo = model.albedo() if model.has_albedo else field.albedo
    est, samples = estimate_face_light(
        image,
        raster,
        normals,
        albedo,
        field.weights,
        vertex_prior=field.prior,
        albedo_basis=model.albedo_basis if model.has_albedo else None,
        albedo_std=model.albedo_std if model.has_albedo else None,
    )
    if est.albedo_coef is not None:
        albedo = model.albedo(est.albedo_coef)
    attrs = interpolate(raster, np.concatenate([normals, albedo, field.weights[:, None]], 1))
    n_px = attrs[..., :3] / np.maximum(np.linalg.norm(attrs[..., :3], axis=-1, keepdims=True), 1e-6)
    covered = raster.covered
    weights = np.clip(attrs[..., 6], 0.0, 1.0) * covered
    if cfg.erode_px > 0:
        k = np.ones((2 * cfg.erode_px + 1,) * 2, np.uint8)
        weights *= cv2.erode(covered.astype(np.uint8), k) > 0
    if cfg.robust:
        robust = np.zeros(covered.shape, np.float32)
        robust[samples.pixels[:, 0], samples.pixels[:, 1]] = est.weights > 0
        weights *= robust
    depth = np.where(covered, raster.depth, -np.inf).astype(np.float32)
    sfs = shape_from_shading(
        image,
        depth,
        n_px.astype(np.float32),
        attrs[..., 3:6],
        est.coloured_sh,
        weights,
        cfg,
    )
    return FaceDetail(sfs, depth, (n_px * covered[..., None]).astype(np.float32), est)
