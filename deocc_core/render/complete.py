"""The completed face: a textured model's albedo fitted to the visible skin, completed elsewhere.

For a model with a texture model (``MorphableModel.texture_mean``: deocc's face model), the
render G sees is the person's own face rather than the model's mean colours:

1. every texel of the UV map is placed in the photo through the fit (its triangle's
   projected vertices); it is *seen* where the photo shows that very surface (the depth test
   of :func:`deocc_core.recon.texture.uv_texture`) facing the camera;
2. the light (``LightEstimate``: SH light and skin gain, estimated robustly from the photo)
   is divided out of the seen texels: the photo's albedo ``A = photo / irradiance``;
3. the model's albedo is fitted to the seen texels robustly (ridge prior, Tukey-reweighted
   least squares starting from the mean): texels that are not the face's skin (a blue mask,
   dark sunglasses, a hand, hair) get weight 0 and so do not colour the fit;
4. completion: a texel keeps the photo's albedo where it is seen and an inlier; else its
   mirror texel's (``u → 1 - u``: the model's UV is left-right symmetric) where that one is;
   else the fitted model albedo; the weights are feathered so no seam shows;
5. shading: per pixel, the completed albedo at the pixel's UV times the photo's SH irradiance
   (per vertex, interpolated: second-order SH light is smooth) (:func:`render_textured`).

Convention: UV maps as :mod:`deocc_core.recon.texture` (row 0 is v = 1); colours in [0, 1]
as :mod:`deocc_core.render.light`; camera-space normals (y up, z toward the viewer).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.morphable.model import MorphableModel
from deocc_core.render.light import LightEstimate
from deocc_core.render.raster import Raster, interpolate, rasterize
from deocc_core.render.shading import sh_basis

__all__ = ["CompletedTexture", "complete_texture", "render_textured", "uv_grid", "CompleteConfig"]


@dataclass(frozen=True)
class CompleteConfig:
    """Options of :func:`complete_texture`.

    Attributes:
        tukey_c: Tukey cut-off of the albedo fit's residuals, in robust stds, and of the
            skin-likeness distances in their scales.
        chroma_scale: scale of the log-chromaticity distance (log r/g, log b/g) between a
            texel's shading-free colour and the model's albedo there (a blue mask is ~0.5
            away; skin of another tone ~0.1).
        brightness_scale: scale of the log-brightness distance (dark glasses: > 1).
        min_sigma: floor of the residual scale (albedo units in [0, 1]).
        iterations: reweighted least-squares iterations.
        ridge: weight of the prior ``‖coef / std‖²`` relative to the number of inliers.
        min_normal_z: texels turned further from the camera are not trusted (grazing view).
        feather: std of the blur of the seen / mirrored weights, texels.
        fit_stride: the albedo fit uses every ``fit_stride``-th texel row and column.
    """

    tukey_c: float = 3.0
    chroma_scale: float = 0.12
    brightness_scale: float = 0.25
    min_sigma: float = 0.03
    iterations: int = 4
    ridge: float = 0.02
    min_normal_z: float = 0.2
    feather: float = 1.0
    fit_stride: int = 2


@dataclass(frozen=True)
class CompletedTexture:
    """One face's completed albedo map and where each texel came from.

    Attributes:
        albedo: ``[T, T, 3]`` float32 completed albedo in the photo's colour (light divided
            out, skin gain kept), in [0, 1.5].
        seen: ``[T, T]`` float32 in [0, 1] weight of the photo's own texel.
        mirrored: ``[T, T]`` float32 weight of the mirror texel (where the own one is not).
        inlier: ``[T, T]`` float32 robust weight of the albedo fit (0 = not skin).
        coef: ``[Kt]`` float32 the fitted albedo coefficients.
    """

    albedo: npt.NDArray[np.float32]
    seen: npt.NDArray[np.float32]
    mirrored: npt.NDArray[np.float32]
    inlier: npt.NDArray[np.float32]
    coef: npt.NDArray[np.float32]


def uv_grid(model: MorphableModel) -> Raster:
    """The model's mesh rasterized in its UV map (texel → triangle + barycentrics); cached."""
    cached = model.__dict__.get("_uv_grid")
    if cached is not None:
        return cached
    t = model.texture_mean.shape[0]
    uv = model.uv
    texel = np.stack([uv[:, 0] * (t - 1), (1.0 - uv[:, 1]) * (t - 1), np.zeros(len(uv))], 1)
    grid = rasterize(texel.astype(np.float32), model.triangles, t, t, cull_backfaces=False)
    model.__dict__["_uv_grid"] = grid
    return grid


def _irradiance(normals: np.ndarray, light: LightEstimate) -> np.ndarray:
    """``[N, 3]`` ``gain_c · sh_basis(n) @ sh[:, c]``: the light as seen by the albedo."""
    return np.maximum(sh_basis(normals) @ light.coloured_sh, 1e-3)


def complete_texture(
    image: npt.NDArray[np.uint8],
    model: MorphableModel,
    raster: Raster,
    projected: npt.NDArray[np.floating],
    normals: npt.NDArray[np.floating],
    light: LightEstimate,
    config: CompleteConfig | None = None,
) -> CompletedTexture:
    """Fit the model's albedo to the face's visible skin and complete the rest (module doc).

    Args:
        image: ``[H, W, 3]`` uint8 RGB (the crop the face was fitted in; occluded or not).
        model: a model with ``texture_mean`` and ``uv``.
        raster: the fit's raster at the image's size.
        projected: ``[V, 3]`` projected vertices (x, y pixels, depth).
        normals: ``[V, 3]`` camera-space unit vertex normals.
        light: the photo's light estimate.
        config: see :class:`CompleteConfig`.

    Returns:
        :class:`CompletedTexture`.
    """
    cfg = config or CompleteConfig()
    grid = uv_grid(model)
    t = model.texture_mean.shape[0]
    h, w = image.shape[:2]
    chart = grid.covered
    where = interpolate(grid, np.asarray(projected, np.float32))  # [T, T, 3]
    nrm = interpolate(grid, np.asarray(normals, np.float32))
    nrm /= np.maximum(np.linalg.norm(nrm, axis=-1, keepdims=True), 1e-6)
    x, y, z = where[..., 0], where[..., 1], where[..., 2]
    xi = np.clip(np.rint(x), 0, w - 1).astype(np.int64)
    yi = np.clip(np.rint(y), 0, h - 1).astype(np.int64)
    inside = chart & (x > -0.5) & (x < w - 0.5) & (y > -0.5) & (y < h - 0.5)
    seen_depth = raster.depth[yi, xi]
    tol = 0.02 * max(h, w)
    visible = inside & np.isfinite(seen_depth) & (np.abs(z - seen_depth) <= tol)
    facing = np.clip((nrm[..., 2] - cfg.min_normal_z) / 0.2, 0.0, 1.0)
    vis_w = visible * facing
    colour = (
        cv2.remap(
            image,
            np.ascontiguousarray(x, np.float32),
            np.ascontiguousarray(y, np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        ).astype(np.float32)
        / 255.0
    )
    irr = _irradiance(nrm.reshape(-1, 3), light).reshape(t, t, 3)
    photo_albedo = colour / irr  # in the reference albedo's units
    mean = model.texture_mean
    # 1. a gate that needs no fit: a texel is skin-like when its shading-free colour is near
    # the model's mean albedo there in chromaticity and brightness (log ratios). A blue mask
    # (b/g up by ~0.5 in log), dark glasses (brightness down by > 1) or a hand's shadow fail
    gate = _likeness(photo_albedo, mean, cfg) * (vis_w > 0.5)
    # 2. the albedo coefficients, fitted to the gated texels (Tukey-reweighted, ridge prior)
    sub = np.zeros((t, t), bool)
    sub[:: cfg.fit_stride, :: cfg.fit_stride] = True
    idx = np.flatnonzero(sub & (gate > 0.5))
    coef = np.zeros(0 if model.texture_basis is None else model.texture_basis.shape[1], np.float32)
    fitted = mean
    if coef.size and idx.size > 3 * coef.size:
        coef = _fit_coef(photo_albedo, model, idx, gate.reshape(-1)[idx], cfg)
        fitted = mean + (model.texture_basis @ coef).reshape(t, t, 3)
    # 3. the final inliers: skin-like against the fitted albedo too
    inlier = (_likeness(photo_albedo, fitted, cfg) * gate).astype(np.float32)
    own = _feather(vis_w * (inlier > 0.5), cfg.feather)
    mirror_own = own[:, ::-1]
    mirrored = (mirror_own * (1.0 - own)).astype(np.float32)
    completed = (
        own[..., None] * photo_albedo
        + mirrored[..., None] * photo_albedo[:, ::-1]
        + (1.0 - own - mirrored)[..., None] * fitted
    )
    return CompletedTexture(
        np.clip(completed, 0.0, 1.5).astype(np.float32),
        own.astype(np.float32),
        mirrored,
        inlier,
        coef,
    )


def _likeness(albedo: np.ndarray, ref: np.ndarray, cfg: CompleteConfig) -> np.ndarray:
    """``[T, T]`` Tukey weight of each texel's log-chromaticity and log-brightness distance."""
    a = np.maximum(albedo, 1e-3)
    r = np.maximum(ref, 1e-3)
    la, lr = np.log(a), np.log(r)
    chroma = (la[..., [0, 2]] - la[..., 1:2]) - (lr[..., [0, 2]] - lr[..., 1:2])
    dc = np.linalg.norm(chroma, axis=-1) / cfg.chroma_scale
    dl = np.abs(la.mean(-1) - lr.mean(-1)) / cfg.brightness_scale
    d = np.maximum(dc, dl)
    return np.clip(1.0 - (d / cfg.tukey_c) ** 2, 0.0, 1.0) ** 2


def _fit_coef(
    photo_albedo: np.ndarray,
    model: MorphableModel,
    idx: np.ndarray,
    weights: np.ndarray,
    cfg: CompleteConfig,
) -> np.ndarray:
    """Ridge-regularised, Tukey-reweighted albedo coefficients on the texels ``idx``."""
    t = model.texture_mean.shape[0]
    target = photo_albedo.reshape(-1, 3)[idx]
    mu = model.texture_mean.reshape(-1, 3)[idx]
    b = model.texture_basis.reshape(t * t, 3, -1)[idx]  # [n, 3, K]
    std = np.maximum(model.texture_std, 1e-6)
    w0 = weights.astype(np.float64)
    w = w0.copy()
    coef = np.zeros(b.shape[2])
    for _ in range(cfg.iterations):
        sw = np.repeat(np.sqrt(w), 3)[:, None]
        a = b.reshape(-1, b.shape[2]) * sw
        rhs = (target - mu).reshape(-1) * sw[:, 0]
        lam = cfg.ridge * max(w.sum(), 1.0) / std**2
        coef = np.linalg.solve(a.T @ a + np.diag(lam), a.T @ rhs)
        r = np.linalg.norm(target - mu - b @ coef, axis=1)
        sigma = max(1.4826 * _weighted_median(r, w), cfg.min_sigma)
        w = w0 * np.clip(1.0 - (r / (cfg.tukey_c * sigma)) ** 2, 0.0, 1.0) ** 2
    return coef.astype(np.float32)


def _feather(weight: np.ndarray, sigma: float) -> np.ndarray:
    """A 0/1 weight eroded a little and blurred: blends without a visible seam."""
    w = weight.astype(np.float32)
    if sigma <= 0:
        return w
    w = cv2.erode(w, np.ones((3, 3), np.uint8))
    return np.clip(cv2.GaussianBlur(w, (0, 0), sigma), 0.0, 1.0)


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    if x.size == 0:
        return 0.0
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    if cw[-1] <= 0:
        return float(np.median(x))
    return float(x[order][np.searchsorted(cw, 0.5 * cw[-1])])


def render_textured(
    raster: Raster,
    uv: npt.NDArray[np.floating],
    albedo: npt.NDArray[np.floating],
    normals: npt.NDArray[np.floating],
    light: LightEstimate,
) -> npt.NDArray[np.uint8]:
    """Shade a UV albedo map per pixel with the photo's light (module docstring, step 5).

    Args:
        raster: the face's raster ``[H, W]``.
        uv: ``[V, 2]`` texture coordinates (v up).
        albedo: ``[T, T, 3]`` albedo map (row 0 = v 1), in the light's reference units.
        normals: ``[V, 3]`` camera-space unit vertex normals.
        light: the light estimate.

    Returns:
        ``[H, W, 3]`` uint8 RGB, black outside the face.
    """
    h, w = raster.tri_id.shape
    cov = raster.covered
    out = np.zeros((h, w, 3), np.uint8)
    if not cov.any():
        return out
    t = albedo.shape[0]
    # second-order SH irradiance is smooth: per vertex, interpolated (as the vertex render
    # does); only the albedo is looked up per pixel
    irr = _irradiance(np.asarray(normals, np.float32), light).astype(np.float32)
    attr = np.concatenate([np.asarray(uv, np.float32), irr], 1)
    px = interpolate(raster, attr)[cov]  # [n, 5]: u, v, irradiance
    k = len(px)
    rows = -(-k // 1024) * 1024  # remap maps must stay under 32767 a side: rows of 1024
    mx = np.zeros(rows, np.float32)
    my = np.zeros(rows, np.float32)
    mx[:k] = px[:, 0] * (t - 1)
    my[:k] = (1.0 - px[:, 1]) * (t - 1)
    alb = cv2.remap(
        np.ascontiguousarray(albedo, np.float32),
        mx.reshape(-1, 1024),
        my.reshape(-1, 1024),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    ).reshape(-1, 3)[:k]
    col = alb * px[:, 2:]
    out[cov] = np.clip(col * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out
