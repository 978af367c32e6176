"""PSNR / SSIM on the whole crop and inside the occluder mask.

scikit-image's reference implementations; SSIM uses a 7×7 window on [0, 255] RGB. The
trainer's validation scores with the same :func:`masked_psnr`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

__all__ = ["ImageScores", "score", "masked_psnr"]


@dataclass(frozen=True)
class ImageScores:
    """PSNR (dB) and SSIM of one output against the ground truth, whole crop and in the mask."""

    psnr: float
    ssim: float
    psnr_mask: float
    ssim_mask: float


def masked_psnr(
    pred: npt.NDArray[np.uint8], gt: npt.NDArray[np.uint8], mask: npt.NDArray[np.bool_]
) -> float:
    """PSNR over the pixels where ``mask`` ``[H, W]`` is True (all channels).

    Example:
        >>> gt = np.zeros((4, 4, 3), np.uint8); pred = gt.copy(); pred[0, 0] = 255
        >>> m = np.zeros((4, 4), bool); m[:2, :2] = True
        >>> round(masked_psnr(pred, gt, m), 2)  # mse = 255² / 4 → 10·log10(4)
        6.02
    """
    if not mask.any():
        return float("nan")
    d = pred.astype(np.float64)[mask] - gt.astype(np.float64)[mask]
    mse = (d**2).mean()
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def score(
    pred: npt.NDArray[np.uint8], gt: npt.NDArray[np.uint8], mask: npt.NDArray[np.bool_]
) -> ImageScores:
    """All four scores for uint8 RGB images ``[H, W, 3]`` and a bool mask ``[H, W]``."""
    with np.errstate(divide="ignore"):  # identical images: infinite PSNR, capped below
        psnr = peak_signal_noise_ratio(gt, pred, data_range=255)
    ssim, smap = structural_similarity(gt, pred, channel_axis=2, data_range=255, full=True)
    ssim_mask = float(smap.mean(2)[mask].mean()) if mask.any() else float("nan")
    return ImageScores(
        float(min(psnr, 100.0)), float(ssim), min(masked_psnr(pred, gt, mask), 100.0), ssim_mask
    )
