"""A face crop ready for 3D occluders, and compositing a rendered occluder into it.

:func:`prepare_scene` gathers, once per face, what every occluder needs: the fitted head
(:mod:`deocc_core.occluders.head`), the depth every object is tested against, the photo's
light and skin colour, and its sharpness / noise / JPEG statistics.
:func:`composite_layer` puts a rendered :class:`~deocc_core.occluders.layer.ObjectLayer`
into the crop: cast shadow along the light and contact shading, blur to the photo's
sharpness, the photo's noise, the source's resolution and JPEG; it returns the image, the
object mask and the changed mask.

Masks:
    ``occ_mask`` is the object (its opacity, 0..255). ``changed_mask`` is every pixel the
    composite changed (object, shadow, noise, JPEG blocks): its value is the larger of the
    object's opacity and the shadow's darkening (x 255), at least 1 on a changed pixel, and
    0 exactly where the output equals the input bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.errors import InputError
from deocc_core.landmarks.parts import part, point
from deocc_core.morphable.model import MorphableModel
from deocc_core.morphable.params import FitParams
from deocc_core.occluders.head import HeadGeometry, head_geometry, proxy_depth
from deocc_core.occluders.layer import ObjectLayer, SceneLight, scene_light
from deocc_core.occluders.photo import (
    PhotoStats,
    add_noise,
    block_size,
    measure_photo,
    source_grid,
)
from deocc_core.render.light import FaceSamples, LightEstimate
from deocc_core.render.raster import Raster
from deocc_core.timing import stage

__all__ = [
    "FaceScene",
    "prepare_scene",
    "composite_layer",
    "estimate_light",
    "photo_light",
    "light_from_estimate",
    "face_normals",
    "differs",
    "grid_box",
]

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
TYPICAL_SKIN = np.float32([0.75, 0.57, 0.48])  # albedo whose hue counts as "no light colour"
# light shape of a typical portrait (DC 1): the frontal and overhead share of the SH fit prior
Z_PRIOR, ZZ_PRIOR, Y_PRIOR = 0.35, -0.08, 0.2
BLUR_GAIN = 1.5  # see match_sigma


@dataclass(frozen=True)
class FaceScene:
    """Everything an occluder needs about one face crop.

    Attributes:
        image: ``[H, W, 3]`` uint8 RGB crop. landmarks: ``[68, 2]`` crop pixels.
        head: the fitted head (model space). ref_depth: ``[H, W]`` float32 depth objects are
            tested against (face render where it covers, else the head proxies; -inf empty).
        face_mask: ``[H, W]`` uint8 0/255 render silhouette (M).
        light: the photo's light, scaled so an albedo renders at the photo's exposure.
        skin: ``[3]`` float32 skin albedo in [0, 1] (hands take it).
        photo: sharpness, noise and JPEG statistics of the crop.
    """

    image: U8
    landmarks: F32
    head: HeadGeometry
    ref_depth: F32
    face_mask: U8
    light: SceneLight
    skin: F32
    photo: PhotoStats

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W)."""
        return self.image.shape[:2]  # type: ignore[return-value]


def face_normals(face_depth: F32) -> F32:
    """``[H, W, 3]`` camera-space unit normals from a render's depth (0 where undefined).

    Convention:
        Depth larger = closer, in pixel units; camera y is up (image y down), so the normal
        is ``(-dD/dx, +dD/dy, 1)`` normalised.

    Example:
        >>> d = np.tile(np.arange(8, dtype=np.float32), (8, 1))  # closer to the right
        >>> [round(float(v), 3) for v in face_normals(d)[4, 4]]
        [-0.707, 0.0, 0.707]
    """
    d = np.where(np.isfinite(face_depth), face_depth, np.nan).astype(np.float32)
    gy, gx = np.gradient(d)
    n = np.stack([-gx, gy, np.ones_like(gx)], -1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return np.nan_to_num(n, nan=0.0).astype(np.float32)


def _skin_region(landmarks: F32, face_mask: U8) -> npt.NDArray[np.bool_]:
    """Face skin: the eroded silhouette minus eyes, brows and mouth (dilated)."""
    h, w = face_mask.shape
    skin = cv2.erode((face_mask > 127).astype(np.uint8), np.ones((5, 5), np.uint8))
    holes = np.zeros((h, w), np.uint8)
    lm = np.round(landmarks).astype(np.int32)
    span = max(
        float(
            np.linalg.norm(landmarks[point("eye_left_outer")] - landmarks[point("eye_right_outer")])
        ),
        8.0,
    )
    for name in ("eye_right", "eye_left", "brow_right", "brow_left", "lips_outer"):
        cv2.fillConvexPoly(holes, cv2.convexHull(lm[part(name)]), 1)
    holes = cv2.dilate(holes, np.ones((3, 3), np.uint8), iterations=max(1, int(span * 0.06)))
    return (skin > 0) & (holes == 0)


def estimate_light(image: U8, face_depth: F32, face_mask: U8, landmarks: F32) -> tuple[F32, F32]:
    """Fallback light + skin estimate: a robust SH fit to the face's skin pixels.

    Fits ``pixel = B(n) @ L`` (9 SH terms per channel, ``L`` = albedo x exposure x light) on
    skin pixels with 3 trimmed least-squares rounds, then splits ``L`` into a light and a
    skin albedo whose luminance is 0.6 x sqrt(observed / 0.5) (in [0.22, 0.8]: a darker
    face is taken as half darker skin, half a darker photo); the light's colour is half
    the skin's deviation from a typical skin hue. Used until the shared estimator
    (``deocc_core.render.light``) is wired in; pass ``sh``/``skin`` to :func:`prepare_scene`
    to override it.

    Returns:
        ``(sh [9, 3] float32, skin albedo [3] float32)``.
    """
    region = _skin_region(landmarks, face_mask) & np.isfinite(face_depth)
    # skin-coloured pixels only (hair, beard, glasses and shadows over the face are not skin)
    ycc = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    skin_hue = (
        (ycc[..., 1] >= 133) & (ycc[..., 1] <= 178) & (ycc[..., 2] >= 77) & (ycc[..., 2] <= 132)
    )
    if (region & skin_hue).sum() >= max(40, 0.3 * region.sum()):
        region &= skin_hue
    px = image[region].astype(np.float32) / 255.0
    if len(px) < 40:
        from deocc_core.render.shading import DEFAULT_SH

        return np.repeat(DEFAULT_SH[:, None], 3, 1).astype(np.float32), TYPICAL_SKIN.copy()
    n = face_normals(face_depth)[region]
    x, y, z = n[:, 0], n[:, 1], n[:, 2]
    c1, c2 = 2.0 / 3.0, 0.25
    b = np.stack(
        [np.ones_like(x), c1 * y, c1 * z, c1 * x, c2 * x * y, c2 * y * z,
         c2 * 0.5 * (3 * z * z - 1), c2 * x * z, c2 * 0.5 * (x * x - y * y)], 1
    ).astype(np.float64)  # fmt: skip
    lum = (px @ np.float32([0.299, 0.587, 0.114])).astype(np.float64)
    keep = (lum > 0.04) & (px.max(1) < 0.97)
    # Face normals lie in a cone around the view axis: the DC and the z-terms (bands 1 and 2)
    # cannot be told apart, so they are tied to a prior ratio and only their common scale
    # is fitted; the other terms are pulled toward a prior light from above (ridge).
    prior = np.array([1.0, 0, Z_PRIOR, 0, 0, 0, ZZ_PRIOR, 0, 0])
    free = [1, 3, 4, 5, 7, 8]
    mean = np.array([Y_PRIOR, 0, 0, 0, 0, 0])
    a_mat = np.concatenate([(b @ prior)[:, None], b[:, free]], 1)
    lam = np.array([0, 1.0, 0.3, 3, 3, 3, 3]) * len(px) * 2e-3
    sol = np.zeros(7)
    for _ in range(3):
        aa, yy = a_mat[keep], lum[keep]
        # ridge toward mean * scale: solve for (scale, w) with w - mean * scale penalised
        m = np.diag(lam)
        m[1:, 0] = -lam[1:] * mean
        pen = m.T @ m / np.maximum(lam.max(), 1e-9)
        sol = np.linalg.solve(aa.T @ aa + pen, aa.T @ yy)
        res = np.abs(a_mat @ sol - lum)
        keep = keep & (res <= np.percentile(res[keep], 80))
    scale = max(float(sol[0]), 1e-3)
    shape = prior.copy()
    shape[free] = sol[1:] / scale  # luminance light shape, DC 1
    irr = float(np.median(b[keep] @ shape))
    skin_obs = np.median(px[keep], 0).astype(np.float64)
    lum_obs = float(skin_obs @ [0.299, 0.587, 0.114])
    # a darker face is half darker skin, half a darker photo
    albedo_lum = float(np.clip(0.6 * np.sqrt(lum_obs / 0.5), 0.22, 0.8))
    exposure = lum_obs / albedo_lum / max(irr, 0.3)
    hue = skin_obs / max(lum_obs, 1e-6)
    typ = TYPICAL_SKIN / float(TYPICAL_SKIN @ [0.299, 0.587, 0.114])
    light_colour = np.sqrt(hue / typ)
    light_colour /= float(light_colour @ [0.299, 0.587, 0.114])
    sh = shape[:, None] * exposure * light_colour[None]
    skin = np.clip(skin_obs / (exposure * irr * light_colour), 0.02, 0.95)
    return sh.astype(np.float32), skin.astype(np.float32)


def photo_light(
    image: U8, model: MorphableModel, params: FitParams, raster: Raster
) -> tuple[F32, F32]:
    """The photo's light and the skin albedo under it, from the shared estimator.

    :func:`deocc_core.render.light.estimate_face_light` (robust SH + skin colour; the
    model's albedo, or :func:`deocc_core.render.skin.skin_field` for shape-only models, as
    the reference). Occluders are lit by its ``coloured_sh`` (the light as the reference
    albedo sees it, the photo's colour cast included); a hand takes the reference albedo
    of the face's inlier samples, so under that light it renders in the face's own colour.

    Returns:
        ``(sh [9, 3] float32, skin albedo [3] float32)``.

    Raises:
        InputError: too few usable face pixels.
    """
    from deocc_core.morphable.camera import rotation_matrix
    from deocc_core.render.light import estimate_face_light
    from deocc_core.render.shading import vertex_normals
    from deocc_core.render.skin import skin_field

    verts = model.vertices(params.id_coef, params.exp_coef)
    rot = rotation_matrix(params.pose.pitch, params.pose.yaw, params.pose.roll)
    normals = vertex_normals(verts, model.triangles) @ rot.T.astype(np.float32)
    field = skin_field(model)
    albedo = model.albedo(None) if model.has_albedo else field.albedo
    est, samples = estimate_face_light(
        image, raster, normals, albedo, field.weights, vertex_prior=field.prior
    )
    return light_from_estimate(est, samples)


def light_from_estimate(est: LightEstimate, samples: FaceSamples) -> tuple[F32, F32]:
    """:func:`photo_light`'s result from an estimate already made (same inputs, same light).

    Occluders are lit by ``est.coloured_sh``; the skin albedo is the reference albedo of the
    face's samples weighted by the estimate's final weights.

    Returns:
        ``(sh [9, 3] float32, skin albedo [3] float32)``.
    """
    w = est.weights.astype(np.float64)
    skin = (samples.albedo * w[:, None]).sum(0) / max(float(w.sum()), 1e-6)
    return est.coloured_sh.astype(np.float32), np.clip(skin, 0.02, 0.95).astype(np.float32)


def prepare_scene(
    image: U8,
    landmarks: npt.NDArray[np.floating],
    model: MorphableModel,
    params: FitParams,
    face_depth: F32,
    face_mask: U8,
    *,
    raster: Raster | None = None,
    sh: npt.ArrayLike | None = None,
    skin: npt.ArrayLike | None = None,
    jpeg_quality: int | None = None,
    source_scale: float = 1.0,
) -> FaceScene:
    """Prepare a face crop for 3D occluders (once per face).

    Args:
        image: ``[H, W, 3]`` uint8 RGB crop.
        landmarks: ``[68, 2]`` crop pixels.
        model: the morphable model the face was fitted with.
        params: the fit (crop pixels).
        face_depth: ``[H, W]`` float32 the face render's depth (-inf where empty).
        face_mask: ``[H, W]`` uint8 the render's silhouette M.
        raster: the face render's raster; with it the light comes from the shared
            estimator (:func:`photo_light`), without it (or when that fails) from the
            fallback :func:`estimate_light`.
        sh: ``[9, 3]`` (or ``[9]``) SH light of the photo in occluder units; default estimated.
        skin: ``[3]`` skin albedo in [0, 1] under that light; default estimated.
        jpeg_quality: the source photo's JPEG quality, None for a non-JPEG source.
        source_scale: crop pixels per source pixel.

    Returns:
        :class:`FaceScene`.

    Raises:
        ShapeError: arrays of the wrong shape.
    """
    img = check_array(np.asarray(image), "image", (None, None, 3), np.uint8)
    h, w = img.shape[:2]
    lm = check_array(np.asarray(landmarks), "landmarks", (68, 2), cast=np.float32)
    depth = check_array(np.asarray(face_depth), "face_depth", (h, w), cast=np.float32)
    mask = check_array(np.asarray(face_mask), "face_mask", (h, w), np.uint8)
    with stage("head"):
        head = head_geometry(model, params)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        proxies = proxy_depth(head.proxies, params.pose, xs, ys)
        ref = np.where(np.isfinite(depth), depth, proxies).astype(np.float32)
    if sh is None or skin is None:
        with stage("light"):
            try:
                if raster is None:
                    raise InputError("no raster")
                est_sh, est_skin = photo_light(img, model, params, raster)
            except InputError:
                est_sh, est_skin = estimate_light(img, depth, mask, lm)
        sh = est_sh if sh is None else sh
        skin = est_skin if skin is None else skin
    with stage("photo match"):
        region = (mask > 127) if (mask > 127).sum() > 64 else np.ones((h, w), bool)
        stats = measure_photo(img, region, jpeg_quality=jpeg_quality, source_scale=source_scale)
    return FaceScene(
        img,
        lm,
        head,
        ref,
        mask,
        scene_light(sh),
        np.asarray(skin, np.float32).reshape(3),
        stats,
    )


def _box(layer: ObjectLayer, pad: int, h: int, w: int) -> tuple[int, int, int, int]:
    lh, lw = layer.shape
    return (
        max(layer.y0 - pad, 0),
        min(layer.y0 + lh + pad, h),
        max(layer.x0 - pad, 0),
        min(layer.x0 + lw + pad, w),
    )


def _place(a: np.ndarray, layer: ObjectLayer, box: tuple[int, int, int, int]) -> np.ndarray:
    """Paste a layer-box array into a zero array of the working box."""
    y0, y1, x0, x1 = box
    out = np.zeros((y1 - y0, x1 - x0) + a.shape[2:], np.float32)
    oy, ox = layer.y0 - y0, layer.x0 - x0
    lh, lw = a.shape[:2]
    sy0, sx0 = max(-oy, 0), max(-ox, 0)
    dy0, dx0 = max(oy, 0), max(ox, 0)
    hh = min(lh - sy0, out.shape[0] - dy0)
    ww = min(lw - sx0, out.shape[1] - dx0)
    out[dy0 : dy0 + hh, dx0 : dx0 + ww] = a[sy0 : sy0 + hh, sx0 : sx0 + ww]
    return out


@dataclass(frozen=True)
class _ShadowPlan:
    shift: tuple[float, float]  # cast offset, pixels (x, y)
    penumbra: float  # blur sigma of the cast shadow, pixels
    darkness: float  # darkening at the core of the cast shadow
    contact: float  # strength of the contact shading (objects touching the skin)
    contact_sigma: float

    @property
    def reach(self) -> float:
        """How far (pixels) the shadow can extend beyond the object."""
        return float(np.hypot(*self.shift) + 2.5 * max(self.penumbra, self.contact_sigma))


def _plan_shadow(scene: FaceScene, layer: ObjectLayer, strength: float) -> _ShadowPlan | None:
    cov = layer.coverage > 0.02
    if strength <= 0 or not cov.any():
        return None
    light = scene.light
    h_med = float(np.percentile(layer.height[cov][::4], 50))
    lz = max(float(light.direction[2]), 0.25)
    face_px = max(scene.head.eye_span * scene.head.pose.scale, 8.0)
    lim = 0.35 * face_px
    sx = float(np.clip(-h_med / lz * light.direction[0], -lim, lim))
    sy = float(np.clip(h_med / lz * light.direction[1], -lim, lim))
    direct_frac = light.direct / max(light.direct + light.ambient, 1e-6)
    # penumbra: the light's angular size (soft light: big, weak) times the distance
    pen = 0.6 + h_med * (0.04 + 0.25 * (1 - direct_frac)) + scene.photo.blur_sigma
    near = float(np.clip(1.0 - h_med / (0.08 * face_px), 0.0, 1.0))
    return _ShadowPlan(
        (sx, sy),
        pen,
        float(np.clip((direct_frac - 0.2) * 1.2, 0.0, 0.55)) * strength,
        0.25 * near * strength,
        1.0 + 0.02 * face_px,
    )


def _shadow(
    scene: FaceScene, opa_full: F32, box: tuple[int, int, int, int], plan: _ShadowPlan
) -> F32:
    """Darkening factor in [0, 1) over the working box: cast shadow + contact shading.

    Soft by nature, so it is computed at half resolution and brought back up.
    """
    y0, y1, x0, x1 = box
    bh, bw = opa_full.shape
    opa = cv2.resize(opa_full, ((bw + 1) // 2, (bh + 1) // 2), interpolation=cv2.INTER_AREA)
    m = np.float32([[1, 0, plan.shift[0] / 2], [0, 1, plan.shift[1] / 2]])
    cast = cv2.warpAffine(opa, m, (opa.shape[1], opa.shape[0]))
    s = cv2.GaussianBlur(cast, (0, 0), max(plan.penumbra / 2, 0.5)) * np.float32(plan.darkness)
    if plan.contact > 0:
        ao = cv2.GaussianBlur(opa, (0, 0), plan.contact_sigma / 2) * np.float32(plan.contact)
        s = np.maximum(s, ao)
    s = cv2.resize(s, (bw, bh), interpolation=cv2.INTER_LINEAR)
    onto = np.isfinite(scene.ref_depth[y0:y1, x0:x1])  # shadows fall on the head, not far away
    return np.where(onto & (s > 0.004), s, 0.0).astype(np.float32)


def match_sigma(stats: PhotoStats, aa_sigma: float = 0.35) -> float:
    """Gaussian sigma to add to a rendered layer so its edges match the photo's blur.

    The renderer's coverage anti-aliasing already blurs by ~``aa_sigma``; when the crop was
    upsampled, :func:`~deocc_core.occluders.photo.source_grid` adds its resampling blur.
    The photo's sigma is scaled by :data:`BLUR_GAIN`: on the shared AFLW2000-3D photos the
    re-blur estimate, made on step edges, reads real faces (lashes, hair: thin lines) ~1.5x
    too sharp; with the gain the contrast-normalised edge sharpness of objects over the
    face's strongest edges has a median of ~1.0 (``tools/bench/bench_occluder_match.py``).
    """
    s = float(stats.source_scale)
    resample = 0.45 * s if s > 1.15 else 0.0
    target = BLUR_GAIN * stats.blur_sigma
    return float(np.sqrt(max(target**2 - aa_sigma**2 - resample**2, 0.0)))


def composite_layer(
    image: U8,
    scene: FaceScene,
    layer: ObjectLayer,
    rng: np.random.Generator,
    *,
    shadow: float = 1.0,
    match: bool = True,
    finish: bool = True,
) -> tuple[U8, U8, U8]:
    """Composite a rendered object into ``image`` (the crop, possibly already occluded).

    Args:
        image: ``[H, W, 3]`` uint8 RGB, the current image.
        scene: the face's scene (light, photo statistics, head depth).
        layer: the rendered object.
        rng: randomness (noise window).
        shadow: scale of the cast shadow and contact shading (0 = none).
        match: blur / noise / source-grid matching to the photo (off: the raw render).
        finish: apply the source grid (resolution + JPEG) now; False when more objects
            follow (the caller applies :func:`~deocc_core.occluders.photo.source_grid` once).

    Returns:
        ``(image uint8 [H, W, 3], occ_mask uint8 [H, W], changed_mask uint8 [H, W])``, see
        the module docstring.
    """
    h, w = image.shape[:2]
    sigma = match_sigma(scene.photo) if match else 0.0
    plan = _plan_shadow(scene, layer, shadow)
    pad = int(np.ceil(max(3 * sigma, plan.reach if plan else 0.0))) + 2
    box = _box(layer, pad, h, w)
    y0, y1, x0, x1 = box
    opa = _place(layer.opacity, layer, box)
    emi = _place(layer.emission, layer, box)
    if sigma >= 0.15:  # the photo's sharpness (the box is padded: no truncated tails)
        opa = cv2.GaussianBlur(opa, (0, 0), sigma)
        emi = cv2.GaussianBlur(emi, (0, 0), sigma)
    sat = np.float32(scene.photo.saturation)
    if sat < 0.999:  # a greyscale or toned photo gets a (partly) desaturated object
        for a in (opa, emi):
            grey = (a @ np.float32([0.299, 0.587, 0.114]))[..., None]
            a[...] = grey + (a - grey) * sat
    sh = (
        _shadow(scene, _place(_mean3(layer.opacity), layer, box), box, plan)
        if plan is not None
        else np.zeros(opa.shape[:2], np.float32)
    )
    src = image[y0:y1, x0:x1].astype(np.float32)
    out = src * (1 - sh[..., None]) * (1 - opa) + emi * np.float32(255.0)
    alpha = _mean3(opa)
    if match and scene.photo.noise_sigma > 0.05:
        ys, xs = np.nonzero(alpha > 0)
        if ys.size:
            ny0, ny1, nx0, nx1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            out[ny0:ny1, nx0:nx1] = add_noise(
                out[ny0:ny1, nx0:nx1], alpha[ny0:ny1, nx0:nx1], scene.photo.noise_sigma, rng
            )
    crop = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    result = image.copy()
    result[y0:y1, x0:x1] = crop
    inner = box
    if match and finish:
        touched = np.zeros((h, w), bool)
        touched[y0:y1, x0:x1] = differs(crop, image[y0:y1, x0:x1])
        result = source_grid(result, touched, scene.photo)
        box = grid_box(box, scene.photo, h, w)
        y0, y1, x0, x1 = box
    changed = differs(result[y0:y1, x0:x1], image[y0:y1, x0:x1])
    occ = _reframe(alpha, inner, box)
    shd = _reframe(sh, inner, box)
    occ_mask = np.zeros((h, w), np.uint8)
    changed_mask = np.zeros((h, w), np.uint8)
    occ_mask[y0:y1, x0:x1] = np.where(changed, np.clip(occ * 255 + 0.5, 0, 255), 0)
    changed_mask[y0:y1, x0:x1] = np.where(
        changed, np.clip(np.maximum(occ, shd) * 255 + 0.5, 1, 255), 0
    )
    return result, occ_mask, changed_mask


def _mean3(a: F32) -> F32:
    """Mean over the last axis of size 3 (numpy's reduction over a tiny axis is slow)."""
    return (a[..., 0] + a[..., 1] + a[..., 2]) * np.float32(1.0 / 3.0)


def differs(a: U8, b: U8) -> npt.NDArray[np.bool_]:
    """``[h, w]`` bool: pixels where two ``[h, w, 3]`` images differ in any channel.

    Example:
        >>> a = np.zeros((2, 2, 3), np.uint8); b = a.copy(); b[1, 0, 2] = 1
        >>> differs(a, b).tolist()
        [[False, False], [True, False]]
    """
    d = a != b
    return d[..., 0] | d[..., 1] | d[..., 2]


def grid_box(
    box: tuple[int, int, int, int], stats: PhotoStats, h: int, w: int
) -> tuple[int, int, int, int]:
    """``box`` grown to the blocks :func:`~deocc_core.occluders.photo.source_grid` may rewrite."""
    b = block_size(stats)
    y0, y1, x0, x1 = box
    return (y0 // b) * b, min(-(-y1 // b) * b, h), (x0 // b) * b, min(-(-x1 // b) * b, w)


def _reframe(a: F32, inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> F32:
    """An array over box ``inner`` placed (zeros around) in the enclosing box ``outer``."""
    if inner == outer:
        return a
    out = np.zeros((outer[1] - outer[0], outer[3] - outer[2]), np.float32)
    dy, dx = inner[0] - outer[0], inner[2] - outer[2]
    out[dy : dy + a.shape[0], dx : dx + a.shape[1]] = a
    return out
