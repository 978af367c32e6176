"""Training occlusions for the segmenter: shapes from the project's own makers, looks from anywhere.

The object's silhouette comes from the procedural makers (:mod:`deocc_core.occluders.procedural`:
masks, glasses, sunglasses, cups, scarves, hands) or from random shapes of our own (blobs,
bands, polygons: wide and thin, anywhere on the face). What is inside the silhouette is
drawn independently of its shape, so that colour alone never decides: the maker's own colours,
patches cut from OTHER face photos (skin-coloured occluders), fabric-like procedural textures,
the face's own skin tone, or flat colours with a light gradient. The real cut-outs of
``../shared/data/occluders`` are never used here: they are the held-out test.

The target is the object mask: alpha > 0.5 of the composited layer. For eyeglasses, whose
lenses let the eye show, the lens area counts as the object (CelebAMask-HQ's eyeglasses
labels cover frame and lenses).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.occluders.classes import OccluderClass
from deocc_core.occluders.procedural import make_layer, procedural_texture

__all__ = ["KINDS", "OcclusionConfig", "augment_photo", "occlude_crop", "random_shape"]

# occluder kinds and their draw weights; "shape" = random silhouettes of our own
KINDS: dict[str, float] = {
    "mask": 0.28,
    "eyeglasses": 0.14,
    "sunglasses": 0.14,
    "hand": 0.1,
    "scarf": 0.07,
    "cup": 0.07,
    "shape": 0.2,
}
_CLASS = {
    "mask": OccluderClass.MASK,
    "eyeglasses": OccluderClass.EYEGLASSES,
    "sunglasses": OccluderClass.SUNGLASSES,
    "hand": OccluderClass.HAND,
    "scarf": OccluderClass.SCARF,
    "cup": OccluderClass.CUP,
}


@dataclass(frozen=True)
class OcclusionConfig:
    """How training occlusions are drawn.

    Attributes:
        clean: share of crops left without an occluder (the empty-mask examples).
        second: share of occluded crops that get a second object.
        recolour: share of objects whose inside is redrawn (not the maker's own colours).
        frames: draw weight of :func:`glasses_frames` beside :data:`KINDS` (whose weights sum
            to 1).
    """

    clean: float = 0.12
    second: float = 0.2
    recolour: float = 0.7
    frames: float = 0.0  # draw weight of our own eyeglass frames (:func:`glasses_frames`)


def _smooth_noise(h: int, w: int, rng: np.random.Generator, sigma: float) -> np.ndarray:
    n = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), sigma)
    return n / max(float(n.std()), 1e-6)


def random_shape(
    size: int, landmarks: npt.NDArray[np.floating], rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """A random silhouette over part of the face: a blob, a band (wide or thin) or a polygon.

    Returns:
        ``[S, S]`` float32 alpha in [0, 1].
    """
    lm = np.asarray(landmarks, np.float64)
    a = np.zeros((size, size), np.uint8)
    centre = lm[rng.integers(68)] + rng.normal(0, size * 0.05, 2)
    scale = float(np.ptp(lm[:, 0]))
    kind = rng.integers(3)
    if kind == 0:  # a smooth blob: thresholded smooth noise, kept near the centre
        n = _smooth_noise(size, size, rng, rng.uniform(4, 10))
        yy, xx = np.mgrid[0:size, 0:size]
        r = np.hypot(xx - centre[0], yy - centre[1]) / (scale * rng.uniform(0.15, 0.45))
        return cv2.GaussianBlur(((n - 2.0 * r**2 + 1.0) > 0).astype(np.float32), (0, 0), 0.6)
    if kind == 1:  # a band across the face (a strap, a strand of hair, a bar)
        ang = rng.uniform(0, np.pi)
        d = np.array([np.cos(ang), np.sin(ang)]) * size
        t = max(1, int(scale * rng.choice([rng.uniform(0.02, 0.06), rng.uniform(0.1, 0.35)])))
        p0, p1 = np.round(centre - d).astype(int), np.round(centre + d).astype(int)
        cv2.line(a, tuple(p0), tuple(p1), 255, t, cv2.LINE_AA)
    else:  # a random polygon
        k = rng.integers(3, 9)
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = scale * rng.uniform(0.1, 0.45) * rng.uniform(0.5, 1.0, k)
        pts = centre + np.stack([np.cos(ang), np.sin(ang)], 1) * rad[:, None]
        cv2.fillPoly(a, [np.round(pts * 4).astype(np.int32)], 255, cv2.LINE_AA, shift=2)
    return a.astype(np.float32) / 255.0


def glasses_frames(
    size: int, landmarks: npt.NDArray[np.floating], rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Eyeglasses of our own: frame outlines 1-4 px thick of varied lens shapes, with temples.

    The procedural maker's frames are under 1 px at 128 px; real frames are thicker and
    come in more shapes (round, rectangular, rounded, cat-eye, half-rim).

    Returns:
        ``(frame [S, S], lens [S, S], target [S, S])`` float32 in [0, 1]; the target is the
        frame plus the lenses.
    """
    lm = np.asarray(landmarks, np.float64)
    frame = np.zeros((size, size), np.uint8)
    lens = np.zeros((size, size), np.uint8)
    thick = int(rng.integers(1, 5))
    kind = rng.integers(4)
    scale_w, scale_h = rng.uniform(0.75, 1.0), rng.uniform(0.45, 0.8)
    centres = []
    for eye in (lm[36:42], lm[42:48]):
        c = eye.mean(0) + [0, rng.uniform(-0.05, 0.2) * np.linalg.norm(eye[3] - eye[0])]
        ew = np.linalg.norm(eye[3] - eye[0])
        ang = np.degrees(np.arctan2(eye[3, 1] - eye[0, 1], eye[3, 0] - eye[0, 0]))
        ax = np.array([ew * scale_w * 1.05, ew * scale_h * 1.05])
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        if kind == 0:  # round / oval
            pts = np.stack([np.cos(t), np.sin(t)], 1)
        else:  # superellipse: rectangular (high power) to rounded; cat-eye lifts the outer top
            pw = 2 / rng.uniform(4, 10) if kind == 1 else 2 / rng.uniform(2.5, 4)
            pts = np.stack(
                [
                    np.sign(np.cos(t)) * np.abs(np.cos(t)) ** pw,
                    np.sign(np.sin(t)) * np.abs(np.sin(t)) ** pw,
                ],
                1,
            )
            if kind == 3:
                outer = 1.0 if eye is lm[42:48] or c[0] > lm[27, 0] else -1.0
                pts[:, 1] -= 0.35 * np.clip(pts[:, 0] * outer, 0, 1) * (pts[:, 1] < 0)
        r = np.deg2rad(ang)
        rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
        poly = np.round((c + (pts * ax) @ rot.T) * 4).astype(np.int32)
        cv2.fillPoly(lens, [poly], 255, cv2.LINE_AA, shift=2)
        if rng.random() < 0.15:  # half-rim: the top only
            cv2.polylines(frame, [poly[pts[:, 1] <= 0.1]], False, 255, thick, cv2.LINE_AA, shift=2)
        else:
            cv2.polylines(frame, [poly], True, 255, thick, cv2.LINE_AA, shift=2)
        centres.append(c)
    a, b = centres
    cv2.line(
        frame,
        tuple(np.round(a + (b - a) * 0.35).astype(int)),
        tuple(np.round(a + (b - a) * 0.65).astype(int)),
        255,
        thick,
        cv2.LINE_AA,
    )
    for c, ear in ((a, lm[0]), (b, lm[16])):  # temples toward the ears
        start = c + (ear - c) * 0.35
        cv2.line(
            frame,
            tuple(np.round(start).astype(int)),
            tuple(np.round(ear).astype(int)),
            255,
            max(1, thick - 1),
            cv2.LINE_AA,
        )
    f = frame.astype(np.float32) / 255
    ln = lens.astype(np.float32) / 255
    return f, ln, np.maximum(f > 0.5, ln > 0.5).astype(np.float32)


def _fill(
    alpha: np.ndarray,
    image: np.ndarray,
    landmarks: np.ndarray,
    donors: npt.NDArray[np.uint8],
    rng: np.random.Generator,
) -> np.ndarray:
    """A ``[S, S, 3]`` float32 appearance for the object, independent of its shape."""
    s = alpha.shape[0]
    kind = rng.choice(4, p=[0.35, 0.25, 0.2, 0.2])
    if kind == 0 and len(donors):  # a patch of another photo, scaled, turned and recoloured
        src = donors[rng.integers(len(donors))].astype(np.float32) / 255.0
        m = cv2.getRotationMatrix2D(
            (s / 2, s / 2), float(rng.uniform(-180, 180)), float(rng.uniform(1.0, 3.0))
        )
        m[:, 2] += rng.uniform(-s / 3, s / 3, 2)
        tex = cv2.warpAffine(src, m, (s, s), borderMode=cv2.BORDER_REFLECT)
        if rng.random() < 0.5:
            tex = tex[..., rng.permutation(3)]
    elif kind == 1:
        tex = procedural_texture(s, s, rng)
    elif kind == 2:  # the face's own skin tone: occluders that match the skin
        cheek = image[
            int(landmarks[29, 1]) - 3 : int(landmarks[29, 1]) + 3,
            int(landmarks[29, 0]) - 3 : int(landmarks[29, 0]) + 3,
        ].reshape(-1, 3)
        base = cheek.mean(0) / 255.0 if len(cheek) else rng.uniform(0.3, 0.8, 3)
        tex = np.broadcast_to(base * rng.uniform(0.8, 1.2, 3), (s, s, 3)).astype(np.float32)
        tex = tex * (1 + 0.08 * _smooth_noise(s, s, rng, 3)[..., None])
    else:
        tex = np.broadcast_to(rng.uniform(0, 1, 3), (s, s, 3)).astype(np.float32)
    # light across the object and a darker rim: a rounded, lit look
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s - 0.5
    g = rng.normal(0, 0.5, 2)
    light = 1 + 0.4 * (g[0] * xx + g[1] * yy) + 0.1 * _smooth_noise(s, s, rng, 8)
    inner = cv2.GaussianBlur(alpha, (0, 0), 3.0)
    rim = 1 - rng.uniform(0, 0.35) * (1 - np.clip(inner / max(float(inner.max()), 1e-6), 0, 1))
    tex = tex * (light * rim)[..., None] + rng.normal(0, rng.uniform(0, 0.04), (s, s, 1))
    return np.clip(tex, 0, 1).astype(np.float32)


def _layer(
    kind: str,
    image: np.ndarray,
    landmarks: np.ndarray,
    donors: npt.NDArray[np.uint8],
    rng: np.random.Generator,
    config: OcclusionConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """One object: ``([S, S, 4] float32 RGBA layer, [S, S] float32 target)``."""
    s = image.shape[0]
    if kind == "frames":
        frame, lens, target = glasses_frames(s, landmarks, rng)
        fill = _fill(frame, image, landmarks, donors, rng)
        if rng.random() < 0.6:  # most frames are dark
            fill = fill * rng.uniform(0.05, 0.4)
        tint = rng.uniform(0, 0.3, 3) if rng.random() < 0.3 else rng.uniform(0.7, 1.0, 3)
        lens_a = lens * (rng.uniform(0.75, 0.95) if tint.max() < 0.5 else rng.uniform(0.03, 0.2))
        alpha = np.maximum(frame, lens_a)
        colour = np.where((frame >= lens_a)[..., None], fill, tint.astype(np.float32))
        return np.concatenate([colour, alpha[..., None]], 2).astype(np.float32), target
    if kind == "shape":
        alpha = random_shape(s, landmarks, rng)
        return np.concatenate([_fill(alpha, image, landmarks, donors, rng), alpha[..., None]], 2), (
            alpha > 0.5
        ).astype(np.float32)
    layer = make_layer(_CLASS[kind], (s, s), landmarks, rng)
    alpha = layer[..., 3]
    target = (alpha > 0.5).astype(np.float32)
    if kind == "eyeglasses":  # frame plus the lens area it encloses
        target = np.maximum(target, (alpha > 0.04).astype(np.float32))
    if rng.random() < config.recolour:
        fill = _fill(alpha, image, landmarks, donors, rng)
        if kind in ("eyeglasses", "sunglasses"):  # recolour the frame; lenses keep their tint
            solid = (alpha > 0.5)[..., None]
            layer = np.concatenate([np.where(solid, fill, layer[..., :3]), alpha[..., None]], 2)
        else:
            layer = np.concatenate([fill, alpha[..., None]], 2)
    return layer, target


def augment_photo(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photo-level jitter on a ``[S, S, 3]`` float32 [0, 1] image: colour, blur, noise, JPEG."""
    s = image.shape[0]
    x = image * rng.uniform(0.7, 1.3) + rng.uniform(-0.1, 0.1)
    x = x * rng.uniform(0.85, 1.15, 3)
    if rng.random() < 0.3:
        grey = x.mean(2, keepdims=True)
        x = grey + (x - grey) * rng.uniform(0, 0.8)
    if rng.random() < 0.3:  # a low-resolution source
        k = int(rng.integers(s // 3, s))
        x = cv2.resize(cv2.resize(x, (k, k), interpolation=cv2.INTER_AREA), (s, s))
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, 1.2))
    x = np.clip(x + rng.normal(0, rng.uniform(0, 0.03), x.shape), 0, 1)
    u8 = np.round(x * 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 95))])
        u8 = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return u8


def occlude_crop(
    image: npt.NDArray[np.uint8],
    landmarks: npt.NDArray[np.floating],
    rng: np.random.Generator,
    donors: npt.NDArray[np.uint8],
    config: OcclusionConfig | None = None,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """Occlude an aligned face crop with zero, one or two random objects.

    Args:
        image: ``[S, S, 3]`` uint8 RGB aligned crop.
        landmarks: ``[68, 2]`` crop pixels.
        rng: randomness source.
        donors: ``[N, S, S, 3]`` uint8 other crops whose patches dress objects (may be empty).
        config: see :class:`OcclusionConfig` (default: its defaults).

    Returns:
        ``(occluded [S, S, 3] uint8, target [S, S] float32 0/1)``.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> lm = m.mean[m.landmarks68, :2] * [0.4, -0.4] + 64
        >>> img = np.full((128, 128, 3), 128, np.uint8)
        >>> occ, t = occlude_crop(img, lm, np.random.default_rng(1), img[None])
        >>> occ.shape, t.shape, t.dtype
        ((128, 128, 3), (128, 128), dtype('float32'))
    """
    config = config or OcclusionConfig()
    s = image.shape[0]
    lm = np.asarray(landmarks, np.float64)
    x = image.astype(np.float32) / 255.0
    target = np.zeros((s, s), np.float32)
    if rng.random() >= config.clean:
        n = 2 if rng.random() < config.second else 1
        weights = {**KINDS, "frames": config.frames}
        p = np.array(list(weights.values()))
        for kind in rng.choice(list(weights), n, p=p / p.sum()):
            layer, t = _layer(str(kind), image, lm, donors, rng, config)
            a = layer[..., 3:]
            x = x * (1 - a) + layer[..., :3] * a
            target = np.maximum(target, t)
    return augment_photo(x.astype(np.float32), rng), target
