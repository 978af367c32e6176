"""The earlier 2D path (``--occluder-mode 2d``): a flat RGBA layer blended with a drop shadow.

Kept for comparison with the default 3D occluders (:mod:`deocc_core.occluders.occlude`).
Masks mean what they mean there: ``occ_mask`` is the object (its alpha), ``changed_mask``
every pixel the composite changed (object + shadow), 0 exactly where the image is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.occluders.classes import OccluderClass, Region
from deocc_core.occluders.procedural import make_layer
from deocc_core.occluders.regions import classify_region

__all__ = ["Occlusion", "composite_occluder", "blend_layer"]

MIN_COVER = 0.02  # an occluder covering less of the face than this is redrawn


@dataclass(frozen=True)
class Occlusion:
    """An occluded face.

    Attributes:
        image: ``[H, W, 3]`` uint8 RGB occluded face. occ_mask: ``[H, W]`` uint8 object
            alpha 0..255. changed_mask: ``[H, W]`` uint8, > 0 exactly where ``image``
            differs from the input. occluder_class: the class drawn. region: the evaluation
            region the object covers.
    """

    image: npt.NDArray[np.uint8]
    occ_mask: npt.NDArray[np.uint8]
    changed_mask: npt.NDArray[np.uint8]
    occluder_class: OccluderClass
    region: Region


def blend_layer(
    image: npt.NDArray[np.uint8],
    layer: npt.NDArray[np.floating],
    shadow: float = 0.35,
    gain: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Alpha-blend an RGBA layer ``[H, W, 4]`` (float, [0, 1]) with a soft offset shadow.

    Only the occluder's bounding box (plus the shadow's reach) is processed; pixels outside
    it are returned untouched with ``occ_mask == 0``.

    Args:
        image: ``[H, W, 3]`` uint8 RGB.
        layer: ``[H, W, 4]`` straight-alpha RGBA in [0, 1].
        shadow: darkening of the cast shadow's core (0 = none).
        gain: factor on the layer's colour (lighting match).

    Returns:
        ``(image uint8 [H, W, 3], occ_mask uint8 [H, W] (alpha), changed_mask uint8 [H, W])``.

    Example:
        >>> layer = np.zeros((32, 32, 4), np.float32); layer[8:16, 8:16] = 1
        >>> img, m, c = blend_layer(np.full((32, 32, 3), 128, np.uint8), layer)
        >>> int(img[10, 10, 0]), int(m[10, 10]), int(m[0, 0]), int(c[17, 17]) > 0, int(m[17, 17])
        (255, 255, 0, True, 0)
    """
    h, w = layer.shape[:2]
    out_u8 = image.copy()
    mask = np.zeros((h, w), np.uint8)
    ys, xs = np.nonzero(layer[..., 3] > 0)
    if ys.size == 0:
        return out_u8, mask, mask.copy()
    sigma = max(1.0, 0.012 * (h + w))
    pad = int(np.ceil(4 * sigma + sigma))  # blur reach + offset
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, h)
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, w)
    src = image[y0:y1, x0:x1]
    lay = layer[y0:y1, x0:x1]
    img = src.astype(np.float32) / 255.0
    alpha = np.ascontiguousarray(lay[..., 3], np.float32)
    ch, cw = alpha.shape
    shift = np.float32([[1, 0, sigma * 0.6], [0, 1, sigma * 0.8]])
    sh = cv2.GaussianBlur(cv2.warpAffine(alpha, shift, (cw, ch)), (0, 0), sigma) * shadow
    sh = np.where(sh > 0.01, sh, 0)  # no faint tails that barely change a pixel
    img = img * (1 - sh[..., None])
    out = img * (1 - alpha[..., None]) + lay[..., :3] * np.float32(gain) * alpha[..., None]
    strength = np.clip(np.maximum(alpha, sh / max(shadow, 1e-6) * 0.5), 0, 1)
    crop = np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)
    diff = (crop != src).any(-1)
    out_u8[y0:y1, x0:x1] = crop
    changed = np.zeros((h, w), np.uint8)
    changed[y0:y1, x0:x1] = np.where(diff, np.clip(strength * 255 + 0.5, 1, 255), 0)
    mask[y0:y1, x0:x1] = np.where(diff, np.clip(alpha * 255 + 0.5, 0, 255), 0)
    return out_u8, mask, changed


def _lighting_gain(image: np.ndarray, lm: np.ndarray) -> float:
    """Occluder colour factor from the face's mean luminance (a dark photo: darker), mild."""
    x0, y0 = np.maximum(lm.min(0).astype(int), 0)
    x1, y1 = lm.max(0).astype(int) + 1
    face = image[y0:y1:2, x0:x1:2]
    if face.size == 0:
        return 1.0
    lum = float((face.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])).mean()) / 255.0
    return float(np.clip(0.7 + 0.6 * lum, 0.75, 1.1))  # mid-grey face (0.5) keeps the colour


def composite_occluder(
    image: npt.NDArray[np.uint8],
    landmarks: npt.NDArray[np.floating],
    rng: np.random.Generator,
    *,
    classes: list[OccluderClass] | None = None,
    face_mask: npt.NDArray[np.uint8] | None = None,
    yaw: float | None = None,
    packs: list | None = None,
    count: int = 1,
) -> Occlusion:
    """Draw one occluder of a random class (from ``classes``) on a face.

    Args:
        image: ``[H, W, 3]`` uint8 RGB face (a crop).
        landmarks: ``[68, 2]`` pixels in ``image``.
        rng: randomness source (the only one).
        classes: allowed classes, default all six.
        face_mask: ``[H, W]`` uint8 face region (the render's M) for region labels.
        yaw: the FITTED head yaw in degrees (our sign), when known: it picks MaskTheFace views.
        packs: optional :class:`deocc_core.occluders.assets.AssetPack` list; a pack of the
            drawn class is used instead of the procedural maker half of the time.
        count: occluders drawn one over the other (the paper's failure case: > 1);
            the class is the first one's, the mask and region cover them all.

    Returns:
        :class:`Occlusion`.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> lm = m.mean[m.landmarks68, :2] * [0.4, -0.4] + 64
        >>> img = np.full((128, 128, 3), 150, np.uint8)
        >>> rng = np.random.default_rng(0)
        >>> occ = composite_occluder(img, lm, rng, classes=[OccluderClass.MASK])
        >>> lip = np.round(lm[57]).astype(int)
        >>> occ.occluder_class.name, occ.region.name, bool(occ.occ_mask[lip[1], lip[0]] > 0)
        ('MASK', 'LOWER', True)
    """
    img = check_array(np.asarray(image), "image", (None, None, 3), np.uint8)
    lm = check_array(np.asarray(landmarks, np.float64), "landmarks", (68, 2))
    pool = list(classes) if classes else list(OccluderClass)
    if count > 1:
        first = composite_occluder(
            img, lm, rng, classes=classes, face_mask=face_mask, yaw=yaw, packs=packs
        )
        out, occ, chg = first.image, first.occ_mask, first.changed_mask
        for _ in range(count - 1):
            nxt = composite_occluder(
                out, lm, rng, classes=classes, face_mask=face_mask, yaw=yaw, packs=packs
            )
            out = nxt.image
            occ, chg = np.maximum(occ, nxt.occ_mask), np.maximum(chg, nxt.changed_mask)
        changed = (out != img).any(-1)
        occ = np.where(changed, occ, 0).astype(np.uint8)
        chg = np.where(changed, np.maximum(chg, 1), 0).astype(np.uint8)
        return Occlusion(out, occ, chg, first.occluder_class, classify_region(occ, lm, face_mask))
    h, w = img.shape[:2]
    sub = img[::4, ::4].astype(np.int16)
    # colourfulness: median chroma (max - min channel, levels) / 20; a grey photo (0) gets a
    # grey occluder, a vivid one (>= 1) the colours as drawn
    keep_sat = float(np.clip(np.median(sub.max(-1) - sub.min(-1)) / 20.0, 0.0, 1.0))
    for _attempt in range(4):
        cls = OccluderClass(pool[rng.integers(len(pool))])
        layer = None
        usable = [p for p in (packs or []) if p.occluder_class == cls]
        if usable and rng.random() < 0.5:
            layer = usable[rng.integers(len(usable))].draw((h, w), lm, rng, yaw)
        if layer is None:
            layer = make_layer(cls, (h, w), lm, rng, yaw)
        if keep_sat < 1:  # a grey or toned photo gets a (partly) desaturated occluder
            layer = layer.copy()
            grey = (layer[..., :3] @ np.float32([0.299, 0.587, 0.114]))[..., None]
            layer[..., :3] = grey + (layer[..., :3] - grey) * np.float32(keep_sat)
        out, occ, chg = blend_layer(img, layer, gain=_lighting_gain(img, lm))
        region = classify_region(occ, lm, face_mask)
        cover = (occ > 127).sum() / max(
            1, (face_mask > 127).sum() if face_mask is not None else h * w * 0.4
        )
        if cover >= MIN_COVER:
            break
    return Occlusion(out, occ, chg, cls, region)
