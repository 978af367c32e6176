"""Contact sheets: labelled image grids for previews, inspection, training samples, reports."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["image_grid", "to_rgb_u8"]


def to_rgb_u8(image: npt.NDArray) -> npt.NDArray[np.uint8]:
    """Any image-like array to ``uint8 [H, W, 3]`` RGB.

    Accepts ``uint8 [H,W]`` / ``[H,W,3]`` (returned as is or grey→RGB), float ``[H,W(,3)]``
    in [0, 1], or float in [-1, 1] when ``image.min() < 0`` (network outputs).

    Example:
        >>> to_rgb_u8(np.zeros((4, 5), np.float32)).shape
        (4, 5, 3)
    """
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = a.astype(np.float32)
        if a.min(initial=0.0) < 0:
            a = (a + 1.0) / 2.0
        a = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return a


def image_grid(
    rows: Sequence[Sequence[npt.NDArray]],
    labels: Sequence[str] | None = None,
    pad: int = 2,
    label_height: int = 14,
) -> npt.NDArray[np.uint8]:
    """Tile images into one RGB sheet; one optional label per row, drawn above it.

    Args:
        rows: rows of images (any form :func:`to_rgb_u8` accepts); tiles are resized to
            the first tile's size.
        labels: one text per row, or None.
        pad: white pixels between tiles.
        label_height: pixels reserved above each row for its label.

    Returns:
        ``uint8 [H, W, 3]`` RGB sheet.

    Example:
        >>> image_grid([[np.zeros((8, 8, 3), np.uint8)] * 3] * 2).shape
        (22, 32, 3)
    """
    h, w = to_rgb_u8(rows[0][0]).shape[:2]
    ncols = max(len(r) for r in rows)
    lh = label_height if labels is not None else 0
    sheet = np.full((len(rows) * (h + pad + lh) + pad, ncols * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        y = pad + i * (h + pad + lh) + lh
        if labels is not None:
            cv2.putText(
                sheet,
                str(labels[i]),
                (pad, y - 3),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.35,
                (0, 0, 0),
                1,
                cv2.LINE_AA,
            )
        for j, tile in enumerate(row):
            t = to_rgb_u8(tile)
            if t.shape[:2] != (h, w):
                t = cv2.resize(t, (w, h), interpolation=cv2.INTER_AREA)
            x = pad + j * (w + pad)
            sheet[y : y + h, x : x + w] = t
    return sheet
