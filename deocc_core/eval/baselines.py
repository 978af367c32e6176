"""Baselines.

The occluded input itself, and OpenCV inpainting given the TRUE occluder mask (an oracle the GAN
does not get).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["BASELINES", "run_baseline"]

BASELINES = ("input", "telea", "ns")


def run_baseline(
    name: str, occluded: npt.NDArray[np.uint8], occ_mask: npt.NDArray[np.uint8], radius: int = 5
) -> npt.NDArray[np.uint8]:
    """Output of baseline ``name`` for one uint8 RGB crop and its occluder mask.

    Example:
        >>> img = np.full((16, 16, 3), 100, np.uint8); img[6:10, 6:10] = 0
        >>> m = np.zeros((16, 16), np.uint8); m[6:10, 6:10] = 255
        >>> int(run_baseline("telea", img, m)[8, 8, 0]) > 80
        True
    """
    if name == "input":
        return occluded
    mask = (occ_mask > 0).astype(np.uint8) * 255
    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[name]
    return cv2.inpaint(np.ascontiguousarray(occluded), mask, radius, flag)
