"""Which part of the face an occluder covers: the paper's Table 1 groups."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.occluders.classes import Region

__all__ = ["classify_region", "face_hull_mask"]


def face_hull_mask(
    landmarks: npt.NDArray[np.floating], shape: tuple[int, int]
) -> npt.NDArray[np.bool_]:
    """``[H, W]`` bool: the landmark hull extended up to the brows' top (a face region without a render)."""
    lm = np.asarray(landmarks, np.float64)
    pts = np.concatenate([lm[:17], lm[17:27] + (lm[17:27] - lm[30]) * 0.15])
    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(
        m, np.round(cv2.convexHull(pts.astype(np.float32))[:, 0]).astype(np.int32), 1
    )
    return m.astype(bool)


def classify_region(
    occ_mask: npt.NDArray[np.uint8],
    landmarks: npt.NDArray[np.floating],
    face_mask: npt.NDArray[np.uint8] | None = None,
) -> Region:
    """Label what an occluder covers.

    Upper face = above the nose's middle (landmark 29), lower = below it; halves split at
    the nose line. Three quarters: >= 55 % of the face and >= 35 % of its upper part covered; left/right half: >= 45 % of
    one half and < 15 % of the other; else upper or lower by which is covered more (>= 8 %).

    Args:
        occ_mask: ``[H, W]`` uint8 occluder mask. landmarks: ``[68, 2]`` pixels.
        face_mask: ``[H, W]`` uint8 face region; default the landmark hull.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> lm = m.mean[m.landmarks68, :2] * [0.4, -0.4] + 64
        >>> occ = np.zeros((128, 128), np.uint8); occ[int(lm[33, 1]):] = 255
        >>> classify_region(occ, lm).name
        'LOWER'
    """
    h, w = occ_mask.shape
    lm = np.asarray(landmarks, np.float64)
    face = (face_mask > 127) if face_mask is not None else face_hull_mask(lm, (h, w))
    if face.sum() < 16:
        return Region.OTHER
    occ = occ_mask > 20  # tinted lenses count: they change the pixels behind them
    yy, xx = np.mgrid[0:h, 0:w]
    # nose line through 27 and 33, split line at 29 perpendicular to it
    top, bottom = lm[27], lm[33]
    axis = (bottom - top) / max(np.linalg.norm(bottom - top), 1e-6)
    rel_x, rel_y = xx - lm[29, 0], yy - lm[29, 1]
    along = rel_x * axis[0] + rel_y * axis[1]
    across = rel_x * axis[1] - rel_y * axis[0]  # > 0 on the image-left side
    parts = {
        "upper": face & (along < 0),
        "lower": face & (along >= 0),
        "a": face & (across > 0),
        "b": face & (across <= 0),
    }
    frac = {k: (occ & v).sum() / max(v.sum(), 1) for k, v in parts.items()}
    total = (occ & face).sum() / face.sum()
    if total >= 0.55 and frac["upper"] >= 0.35:
        return Region.THREE_QUARTERS
    if max(frac["a"], frac["b"]) >= 0.45 and min(frac["a"], frac["b"]) < 0.15:
        return Region.LEFT_RIGHT_HALF
    if max(frac["upper"], frac["lower"]) < 0.08:
        return Region.OTHER
    return Region.UPPER if frac["upper"] > frac["lower"] else Region.LOWER
