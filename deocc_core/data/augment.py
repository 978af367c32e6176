"""Paired augmentation (pix2pix): one jitter drawn per sample, applied to every channel."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from deocc_core.landmarks.ibug import ibug_scheme
from deocc_core.options import option

__all__ = ["AugmentConfig", "augment_pair", "jitter_mask"]


@dataclass(frozen=True)
class AugmentConfig:
    """pix2pix-style paired jitter: resize up by ``scale`` then random-crop back; flip.

    Saved with a training run (``TrainConfig.augment``; ``--augment-*`` options).
    """

    scale: float = option(
        286 / 256, "Resize up by this factor, then crop back at random (pix2pix: 286/256).", min=1.0
    )
    flip: bool = option(True, "Random horizontal flips (landmarks mirrored with the image).")


def augment_pair(
    arrays: dict[str, np.ndarray], size: int, rng: np.random.Generator, cfg: AugmentConfig
) -> dict[str, np.ndarray]:
    """Apply one drawn jitter (resize up, random crop, horizontal flip) to every array of a sample.

    Images are ``[H, W, C]`` / ``[H, W]`` uint8 (``face_mask`` resized nearest, the rest
    bilinear); an optional ``landmarks`` ``[68, 2]`` float32 entry is moved with the pixels
    and, on a flip, re-indexed with ``ibug_scheme().mirror`` so point 36 stays the right eye's
    outer corner.

    Convention:
        Landmarks in crop pixels, x right, y down, origin at the centre of the top-left
        pixel (deocc_core.morphable.params): resize maps ``x -> (x + 0.5)·big/H - 0.5``,
        crop subtracts the offset, flip maps ``x -> size - 1 - x``.

    Example:
        >>> a = {"x": np.arange(16, dtype=np.uint8).reshape(4, 4)}
        >>> same = AugmentConfig(scale=1.0, flip=False)
        >>> augment_pair(a, 4, np.random.default_rng(0), same)["x"][0].tolist()
        [0, 1, 2, 3]
    """
    big = int(round(size * cfg.scale))
    x0, y0 = rng.integers(0, big - size + 1, 2) if big > size else (0, 0)
    flip = cfg.flip and rng.random() < 0.5
    out = {}
    for k, a in arrays.items():
        if k == "landmarks":
            continue
        src = a.shape[0]
        if big != src:
            interp = cv2.INTER_NEAREST if k == "face_mask" else cv2.INTER_LINEAR
            a = cv2.resize(a, (big, big), interpolation=interp)
        a = a[y0 : y0 + size, x0 : x0 + size]
        out[k] = np.ascontiguousarray(a[:, ::-1] if flip else a)
    if "landmarks" in arrays:
        src = next((a.shape[0] for k, a in arrays.items() if k != "landmarks"), size)
        lm = (arrays["landmarks"].astype(np.float32) + 0.5) * (big / src) - 0.5
        lm = lm - np.array([x0, y0], np.float32)
        if flip:
            lm[:, 0] = size - 1 - lm[:, 0]
            lm = lm[ibug_scheme().mirror]
        out["landmarks"] = np.ascontiguousarray(lm, dtype=np.float32)
    return out


def jitter_mask(occ_mask: np.ndarray, rng: np.random.Generator, erode_p: float = 0.2) -> np.ndarray:
    """A shard's occlusion mask made to look like the segmenter's m̂ (a given-mask G's input).

    m̂ is off by a few pixels at the edges and sometimes misses thin parts: the mask is
    binarised, then mostly dilated by 0-3 px (at 128 px, scaled with the side), sometimes
    (``erode_p``) eroded by 1 px, and given a ~1 px soft edge.

    Args:
        occ_mask: ``[S, S]`` uint8 (0-255; soft after a bilinear resize).
        rng: the sample's augmentation generator (one or two draws).
        erode_p: probability of the 1 px erosion instead of a dilation.

    Returns:
        ``[S, S]`` float32 in [0, 1].

    Example:
        >>> m = np.zeros((128, 128), np.uint8); m[40:80, 40:80] = 255
        >>> g = jitter_mask(m, np.random.default_rng(0))
        >>> g.dtype, bool(g[60, 60] == 1.0), bool(g[10, 10] == 0.0)
        (dtype('float32'), True, True)
    """
    # deocc_core.infer's package pulls in inference: imported when a given-mask run needs it
    from deocc_core.infer.fill import given_mask_edge

    scale = occ_mask.shape[0] / 128
    m = (occ_mask > 127).astype(np.uint8)
    erode = rng.random() < erode_p
    r = max(1, round(scale)) if erode else round(int(rng.integers(0, 4)) * scale)
    return given_mask_edge(m, r, erode)
