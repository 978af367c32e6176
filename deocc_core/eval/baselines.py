"""Baselines.

The occluded input itself, OpenCV inpainting given the TRUE occluder mask (an oracle the GAN
does not get), and ``render``: the mask filled by the sample's 3DMM render colour-matched to
the skin around it, Telea beyond the render's silhouette (:func:`deocc_core.infer.fill.prefill`:
a given-mask G's prefill, i.e. that G untrained). On shards built with ``--model deocc-face``
the render is deocc-face's completed render; on others it is that model's render.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.infer.fill import prefill

__all__ = ["BASELINES", "run_baseline"]

BASELINES = ("input", "telea", "ns", "render")


def run_baseline(
    name: str,
    occluded: npt.NDArray[np.uint8],
    occ_mask: npt.NDArray[np.uint8],
    radius: int = 5,
    *,
    render: npt.NDArray[np.uint8] | None = None,
    covered: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.uint8]:
    """Output of baseline ``name`` for one uint8 RGB crop and its occluder mask.

    Args:
        name: one of :data:`BASELINES`.
        occluded: ``[S, S, 3]`` uint8 RGB.
        occ_mask: ``[S, S]`` uint8, the pixels to fill (> 0).
        radius: the inpainting radius (telea, ns).
        render: ``[S, S, 3]`` uint8, the sample's render (``render`` only).
        covered: ``[S, S]`` bool, the render's silhouette (``render`` only).

    Example:
        >>> img = np.full((16, 16, 3), 100, np.uint8); img[6:10, 6:10] = 0
        >>> m = np.zeros((16, 16), np.uint8); m[6:10, 6:10] = 255
        >>> int(run_baseline("telea", img, m)[8, 8, 0]) > 80
        True
        >>> r = np.full_like(img, 90)  # matched to the skin around the mask: x 100 / 90
        >>> int(run_baseline("render", img, m, render=r, covered=np.ones((16, 16), bool))[8, 8, 0])
        100
    """
    if name == "input":
        return occluded
    if name == "render":
        if render is None or covered is None:
            raise ValueError("the render baseline needs the render and its silhouette")
        return prefill(occluded, render, covered, (occ_mask > 0).astype(np.float32))
    mask = (occ_mask > 0).astype(np.uint8) * 255
    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[name]
    return cv2.inpaint(np.ascontiguousarray(occluded), mask, radius, flag)
