"""Face crops: a square, roll-corrected crop around the 68 landmarks, and its inverse.

Crop geometry (the paper's 256x256 face crops): rotate so the eye centres are level, take
the bounding box of all 68 landmarks (brows to chin, ear to ear), make the crop side
``MARGIN`` (1.6) times the box's longer side, centred on the box and shifted up by 6% of
the side. The face then spans ~62% of the crop with ~0.4 box-heights of room above the
brows for the forehead (measured on the shared AFLW2000-3D faces, yaw -71..55 deg: all
landmarks > 10 px inside a 256 crop). A box, not a similarity fit to a frontal template,
because a template fit shrinks and shifts profile faces (their 2D landmarks collapse
horizontally); the box's height keeps the scale stable across yaw. The forward matrix maps
source pixels to crop pixels; ``inverse`` maps crop pixels back (paste-back at inference).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.landmarks.parts import part

__all__ = ["AlignedFace", "align_face", "crop_matrix", "outside_share", "transform_points"]

MARGIN = 1.6  # crop side / landmark box side: room for forehead, chin and occluders


@dataclass(frozen=True)
class AlignedFace:
    """A face crop and its transforms.

    Attributes:
        image: ``[S, S, 3]`` uint8 RGB crop.
        landmarks: ``[68, 2]`` float32 crop pixels.
        matrix: ``[2, 3]`` float64 source → crop.
        inverse: ``[2, 3]`` float64 crop → source.
    """

    image: npt.NDArray[np.uint8]
    landmarks: npt.NDArray[np.float32]
    matrix: npt.NDArray[np.float64]
    inverse: npt.NDArray[np.float64]


def transform_points(
    points: npt.NDArray[np.floating], matrix: npt.NDArray[np.floating]
) -> npt.NDArray[np.float32]:
    """Apply a ``[2, 3]`` affine matrix to ``[N, 2]`` points."""
    p = np.asarray(points, np.float64)
    return (p @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]).astype(np.float32)


def crop_matrix(
    landmarks: npt.NDArray[np.floating], size: int, margin: float = MARGIN
) -> npt.NDArray[np.float64]:
    """Similarity ``[2, 3]`` mapping the face to a ``size × size`` crop, eyes level.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> lm = m.mean[m.landmarks68, :2] * [1, -1] + 300
        >>> m = crop_matrix(lm, 128)
        >>> p = transform_points(lm, m)
        >>> bool(p.min() > 0 and p.max() < 128)
        True
    """
    lm = check_array(np.asarray(landmarks, np.float64), "landmarks", (68, 2))
    eye_r, eye_l = lm[part("eye_right")].mean(0), lm[part("eye_left")].mean(0)
    angle = np.arctan2(eye_l[1] - eye_r[1], eye_l[0] - eye_r[0])
    c, s = np.cos(-angle), np.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    p = lm @ rot.T
    lo, hi = p.min(0), p.max(0)
    side = max(hi - lo) * margin
    centre = (lo + hi) / 2 - [0, 0.06 * side]  # a little more forehead than neck
    k = size / side
    m = np.zeros((2, 3))
    m[:, :2] = k * rot
    m[:, 2] = -k * centre + (size - 1) / 2
    return m


def align_face(
    image: npt.NDArray[np.uint8],
    landmarks: npt.NDArray[np.floating],
    size: int,
    margin: float = MARGIN,
) -> AlignedFace:
    """Crop a face to ``size × size`` (bilinear, border replicated).

    Args:
        image: ``[H, W, 3]`` uint8 RGB.
        landmarks: ``[68, 2]`` source pixels.
        size: crop side in pixels.
        margin: crop side / landmark box side.
    """
    img = check_array(np.asarray(image), "image", (None, None, 3), np.uint8)
    m = crop_matrix(landmarks, size, margin)
    crop = cv2.warpAffine(
        img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return AlignedFace(crop, transform_points(landmarks, m), m, cv2.invertAffineTransform(m))


def outside_share(matrix: npt.NDArray[np.floating], size: int, shape: tuple[int, int]) -> float:
    """Share of a ``size × size`` crop whose pixels fall outside an ``[H, W]`` image.

    ``align_face`` fills those pixels by edge replication (streaks that no photo shows), so a
    build can skip faces whose crop window leaves the photo. Pixel centres of the crop are
    mapped back through ``matrix`` (``[2, 3]`` source → crop); the image covers
    ``[-0.5, W - 0.5] × [-0.5, H - 0.5]``.

    Example:
        >>> m = np.array([[1.0, 0, 10], [0, 1, 0]])  # the crop starts 10 px left of the image
        >>> outside_share(m, 100, (100, 100))
        0.1
    """
    inv = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    c = np.arange(size, dtype=np.float64)
    pts = np.stack(np.meshgrid(c, c), -1).reshape(-1, 2)
    src = pts @ inv[:, :2].T + inv[:, 2]
    h, w = shape
    inside = (src[:, 0] >= -0.5) & (src[:, 0] <= w - 0.5) & (src[:, 1] >= -0.5)
    inside &= src[:, 1] <= h - 0.5
    return float(np.count_nonzero(~inside) / inside.size)
