"""Paste-back: put G's de-occluded crop into the photo where the model says the face is occluded.

The region comes from the occlusion mask m̂ that a mask-aware G predicts (``blend="mask"``),
not from the 3DMM face silhouette M: a hand or a scarf outside M is replaced too. Every
pixel with m̂ ≥ ``threshold`` (and a margin of ``grow`` around it) takes the crop output;
the weight then falls smoothly to 0 over ``feather``, and also towards the crop's border,
so neither the occluder outline nor the crop square shows as a seam. Where the weight is 0
the photo is returned bit for bit: pixels the model thinks unoccluded are never resampled.

For a ``blend="none"`` generator (the paper's G, which redraws every pixel) the region is
M, the fitted face's silhouette, with the same margin and feather outward.

Evaluation calls the same two functions in crop space (identity transform, the occluded
crop as the "photo"), so the scores describe what ``deocc-infer`` writes.

Convention: crop and photo pixels (x right, y down, origin at the centre of the top-left
pixel); ``inverse`` maps crop pixels to photo pixels (``[2, 3]``, as ``align_face`` gives).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array

__all__ = [
    "PasteConfig",
    "IDENTITY",
    "paste_region",
    "paste_weight",
    "paste_back",
    "paste_into",
    "paste_crop",
    "paste_given",
    "replaced_pixels",
]

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # crop space = "photo" space (eval)


@dataclass(frozen=True)
class PasteConfig:
    """Where and how softly the crop output replaces the photo.

    Attributes:
        threshold: m̂ ≥ threshold (in [0, 1]) counts as occluded.
        grow: replaced fully this far beyond the occluded pixels (fraction of the crop side:
            covers m̂'s soft edge and the occluder's anti-aliased outline).
        feather: then the weight falls to 0 over this width (fraction of the crop side).
        border: the weight rises from 0 at the crop's border over this width (fraction of
            the crop side), so the crop square never shows.
    """

    threshold: float = 0.5
    grow: float = 0.01
    feather: float = 0.03
    border: float = 0.04


def paste_region(
    blend: str, mask: npt.NDArray[np.floating], face_mask: npt.NDArray[np.uint8]
) -> npt.NDArray[np.uint8]:
    """The region a generator's output is pasted over, uint8 ``[S, S]`` 0..255.

    Args:
        blend: the generator's ``blend`` (``"mask"``, ``"given"`` or ``"none"``).
        mask: ``[S, S]`` float in [0, 1], G's occlusion mask m̂, or the mask a given-mask G
            was told (ignored for ``"none"``).
        face_mask: ``[S, S]`` uint8 0/255, the fitted face's silhouette M.

    Returns:
        the mask as uint8 for a mask-aware or given-mask G; M for the paper's G, which
        redraws every pixel and so has no opinion on where the occluder is.

    Example:
        >>> m = np.full((4, 4), 0.5, np.float32); face = np.zeros((4, 4), np.uint8)
        >>> int(paste_region("mask", m, face)[0, 0]), int(paste_region("none", m, face).max())
        (128, 0)
    """
    if blend in ("mask", "given"):
        return np.clip(np.asarray(mask, np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(face_mask, np.uint8)


def _smoothstep(t: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def paste_weight(
    mask: npt.NDArray[np.uint8], config: PasteConfig | None = None
) -> npt.NDArray[np.float32]:
    """The blend weight of the crop output, in crop space.

    Args:
        mask: ``[S, S]`` uint8 0..255: m̂ (or M for a ``blend="none"`` generator).
        config: threshold, margin, feather and border widths.

    Returns:
        ``[S, S]`` float32 in [0, 1]: 1 on and within ``grow`` of the occluded pixels, a
        smoothstep down to exactly 0 at ``grow + feather`` from them, times a smoothstep up
        from 0 at the crop's outermost pixels. All 0 when nothing is occluded.

    Example:
        >>> m = np.zeros((100, 100), np.uint8); m[40:60, 40:60] = 255
        >>> w = paste_weight(m)
        >>> float(w[50, 50]), float(w[50, 60]), float(w[50, 80]), float(w[0, 0])
        (1.0, 1.0, 0.0, 0.0)
    """
    config = config or PasteConfig()
    m = check_array(np.asarray(mask), "mask", (None, None), np.uint8)
    s = m.shape[0]
    occluded = m >= config.threshold * 255
    if not occluded.any():
        return np.zeros(m.shape, np.float32)
    # distance (px) from each pixel to the nearest occluded pixel; 0 on occluded ones
    dist = cv2.distanceTransform((~occluded).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    grow, feather = config.grow * s, max(config.feather * s, 1.0)
    w = 1.0 - _smoothstep((dist - grow) / feather)
    # distance from the crop's edge to each pixel centre: 0.5 on the outermost ring
    idx = np.arange(s, dtype=np.float32) + 0.5
    edge = np.minimum(idx, s - idx)
    edge2d = np.minimum(edge[:, None], edge[None, :])
    w *= _smoothstep((edge2d - 0.5) / max(config.border * s, 1.0))
    return w.astype(np.float32)


def _roi(inverse: npt.NDArray[np.float64], s: int, h: int, w: int) -> tuple[int, int, int, int]:
    """Photo pixel box ``(x0, y0, x1, y1)`` (exclusive end) holding the warped crop, clipped."""
    corners = np.array([[-1, -1], [s, -1], [-1, s], [s, s]], np.float64)
    p = corners @ inverse[:, :2].T + inverse[:, 2]
    x0, y0 = np.floor(p.min(0)).astype(int)
    x1, y1 = np.ceil(p.max(0)).astype(int) + 1
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def paste_back(
    photo: npt.NDArray[np.uint8],
    crop_out: npt.NDArray[np.uint8],
    inverse: npt.NDArray[np.floating],
    weight: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """Blend a processed crop into the photo with a crop-space weight (:func:`paste_weight`).

    Args:
        photo: ``[H, W, 3]`` uint8 RGB.
        crop_out: ``[S, S, 3]`` uint8 RGB, G's (blended) output for the crop.
        inverse: ``[2, 3]`` crop → photo pixels (:data:`IDENTITY` in crop space).
        weight: ``[S, S]`` float32 in [0, 1].

    Returns:
        ``(image, photo_weight)``: the photo with the crop blended in (``photo`` bit for bit
        wherever ``photo_weight`` is 0) and the weight warped to the photo, ``[H, W]``
        float32 in [0, 1] (bilinear; 0 outside the crop).

    Example:
        >>> photo = np.zeros((64, 64, 3), np.uint8); crop = np.full((32, 32, 3), 200, np.uint8)
        >>> m = np.zeros((32, 32), np.uint8); m[8:24, 8:24] = 255
        >>> inv = np.array([[1.0, 0, 16], [0, 1.0, 16]])
        >>> out, a = paste_back(photo, crop, inv, paste_weight(m))
        >>> int(out[32, 32, 0]), int(out[0, 0, 0]), float(a[32, 32])
        (200, 0, 1.0)
    """
    check_array(photo, "photo", (None, None, 3), np.uint8)
    result = photo.copy()
    full = np.zeros(photo.shape[:2], np.float32)
    paste_into(result, full, crop_out, inverse, weight)
    return result, full


def paste_into(
    image: npt.NDArray[np.uint8],
    photo_weight: npt.NDArray[np.float32],
    crop_out: npt.NDArray[np.uint8],
    inverse: npt.NDArray[np.floating],
    weight: npt.NDArray[np.float32],
) -> tuple[int, int, int, int]:
    """:func:`paste_back` in place, touching only the pixels around the crop.

    A photo of several faces is pasted face after face into one ``image`` (no copy of a
    12 MP photo per face). ``photo_weight`` keeps, per pixel, the largest weight of the
    faces pasted so far (what ``deocc-infer`` writes as ``_mask.png``); for one face into
    zeros it equals :func:`paste_back`'s.

    Args:
        image: ``[H, W, 3]`` uint8 RGB, blended in place.
        photo_weight: ``[H, W]`` float32, updated in place (maximum with this face's).
        crop_out: ``[S, S, 3]`` uint8 RGB, G's (blended) output for the crop.
        inverse: ``[2, 3]`` crop → photo pixels.
        weight: ``[S, S]`` float32 in [0, 1] (:func:`paste_weight`).

    Returns:
        The photo box ``(x0, y0, x1, y1)`` (exclusive end) that may have changed.
    """
    check_array(image, "image", (None, None, 3), np.uint8)
    s = check_array(crop_out, "crop_out", (None, None, 3), np.uint8).shape[0]
    check_array(weight, "weight", (s, s))
    h, w = image.shape[:2]
    check_array(photo_weight, "photo_weight", (h, w), np.float32)
    inv = np.asarray(inverse, np.float64)
    if np.allclose(inv, IDENTITY) and (h, w) == (s, s):
        warped, a, (x0, y0, x1, y1) = crop_out, weight.astype(np.float32), (0, 0, w, h)
    else:
        x0, y0, x1, y1 = _roi(inv, s, h, w)
        if x1 <= x0 or y1 <= y0:
            return 0, 0, 0, 0
        shifted = inv - [[0, 0, x0], [0, 0, y0]]
        size = (x1 - x0, y1 - y0)
        warped = cv2.warpAffine(
            crop_out, shifted, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        a = cv2.warpAffine(
            np.ascontiguousarray(weight, np.float32),
            shifted,
            size,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    a = np.clip(a, 0.0, 1.0)
    box = photo_weight[y0:y1, x0:x1]
    np.maximum(box, a, out=box)
    sel = a > 0
    if sel.any():
        part = image[y0:y1, x0:x1]
        src = part[sel].astype(np.float32)
        k = a[sel][:, None]
        mixed = src * (1.0 - k) + warped[sel].astype(np.float32) * k
        part[sel] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    return x0, y0, x1, y1


def paste_crop(
    occluded: npt.NDArray[np.uint8],
    output: npt.NDArray[np.uint8],
    region: npt.NDArray[np.uint8],
    config: PasteConfig | None = None,
) -> npt.NDArray[np.uint8]:
    """What a user gets, in crop space: ``output`` pasted into the ``occluded`` crop.

    The same weights and blending :func:`deocc_core.infer.pipeline.deocclude` applies to a
    photo, with the identity transform: evaluation scores this.

    Args:
        occluded: ``[S, S, 3]`` uint8, G's input crop.
        output: ``[S, S, 3]`` uint8, G's (blended) output.
        region: ``[S, S]`` uint8 0..255 from :func:`paste_region`.
        config: threshold and feathering.

    Example:
        >>> crop = np.zeros((32, 32, 3), np.uint8); out = np.full_like(crop, 90)
        >>> region = np.zeros((32, 32), np.uint8); region[10:20, 10:20] = 255
        >>> r = paste_crop(crop, out, region)
        >>> int(r[15, 15, 0]), int(r[2, 2, 0])
        (90, 0)
    """
    return paste_back(occluded, output, IDENTITY, paste_weight(region, config))[0]


def replaced_pixels(
    region: npt.NDArray[np.uint8], config: PasteConfig | None = None
) -> npt.NDArray[np.bool_]:
    """The pixels a region replaces fully: ``region ≥ threshold`` grown by ``grow``, ``[S, S]``.

    What "inside the model's m̂" means for a baseline given the model's mask (the
    feathered fringe and the crop-border fade of :func:`paste_weight` left out).

    Example:
        >>> m = np.zeros((100, 100), np.uint8); m[40:60, 40:60] = 255
        >>> r = replaced_pixels(m)
        >>> bool(r[50, 50]), bool(r[50, 60]), bool(r[50, 62]), int(r.sum())
        (True, True, False, 480)
    """
    config = config or PasteConfig()
    m = check_array(np.asarray(region), "region", (None, None), np.uint8)
    occluded = m >= config.threshold * 255
    if not occluded.any():
        return occluded
    dist = cv2.distanceTransform((~occluded).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return dist <= config.grow * m.shape[0]


def paste_given(
    photo: npt.NDArray[np.uint8],
    crop_out: npt.NDArray[np.uint8],
    inverse: npt.NDArray[np.floating],
    mask: npt.NDArray[np.uint8],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """Fill a user-given mask from a processed crop; every other pixel stays bit-identical.

    The mask is the user's statement of what is occluded, in PHOTO pixels: no margin, no
    feather beyond it (a soft mask edge blends by its value), and the crop's fill is used
    only where the crop covers the photo.

    Args:
        photo: ``[H, W, 3]`` uint8 RGB.
        crop_out: ``[S, S, 3]`` uint8 RGB, G's raw output for the crop (every pixel redrawn).
        inverse: ``[2, 3]`` crop → photo pixels (:data:`IDENTITY` in crop space).
        mask: ``[H, W]`` uint8 0..255, the occluded pixels (255: replace, 0: keep).

    Returns:
        ``(image, photo_weight)``: ``photo`` bit for bit wherever ``photo_weight`` is 0, which
        includes every pixel where ``mask`` is 0; ``photo_weight`` ``[H, W]`` float32.

    Example:
        >>> photo = np.zeros((64, 64, 3), np.uint8); crop = np.full((32, 32, 3), 200, np.uint8)
        >>> m = np.zeros((64, 64), np.uint8); m[30:34, 30:34] = 255
        >>> out, a = paste_given(photo, crop, np.array([[1.0, 0, 16], [0, 1.0, 16]]), m)
        >>> int(out[31, 31, 0]), int(out[29, 31, 0]), int((out > 0).any(-1).sum())
        (200, 0, 16)
    """
    check_array(photo, "photo", (None, None, 3), np.uint8)
    s = check_array(crop_out, "crop_out", (None, None, 3), np.uint8).shape[0]
    h, w = photo.shape[:2]
    check_array(mask, "mask", (h, w), np.uint8)
    inv = np.asarray(inverse, np.float64)
    result = photo.copy()
    full = np.zeros((h, w), np.float32)
    if np.allclose(inv, IDENTITY) and (h, w) == (s, s):
        warped, cover, (x0, y0, x1, y1) = crop_out, np.ones((h, w), np.float32), (0, 0, w, h)
    else:
        x0, y0, x1, y1 = _roi(inv, s, h, w)
        if x1 <= x0 or y1 <= y0:
            return result, full
        shifted = inv - [[0, 0, x0], [0, 0, y0]]
        size = (x1 - x0, y1 - y0)
        warped = cv2.warpAffine(
            crop_out, shifted, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        # 1 where the crop covers the photo pixel; 0 outside it (no fill there)
        cover = cv2.warpAffine(
            np.ones((s, s), np.float32),
            shifted,
            size,
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    a = mask[y0:y1, x0:x1].astype(np.float32) / 255.0 * cover
    full[y0:y1, x0:x1] = a
    sel = a > 0
    if sel.any():
        src = photo[y0:y1, x0:x1][sel].astype(np.float32)
        k = a[sel][:, None]
        mixed = src * (1.0 - k) + warped[sel].astype(np.float32) * k
        result[y0:y1, x0:x1][sel] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    return result, full
