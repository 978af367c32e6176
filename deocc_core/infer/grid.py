"""The sample sheet of ``deocc-infer --grid``: input crop | occlusion mask m̂ | output per face.

On real occluded photos (no ground truth) this is the paper's Figure 6: what the model
thought was occluded, and what it put there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from deocc_core.viz import image_grid

__all__ = ["face_sheet", "SHEET_COLUMNS"]

SHEET_COLUMNS = "input | mask | output"
Image = npt.NDArray[np.uint8]


def face_sheet(
    faces: Sequence[
        tuple[str, npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]
    ],
    per_row: int = 3,
) -> npt.NDArray[np.uint8]:
    """Tile faces ``per_row`` to a row, each as input crop | mask | output.

    Args:
        faces: ``(label, crop [S,S,3] uint8, mask [S,S] uint8 0..255, output [S,S,3] uint8)``.
        per_row: faces side by side in one row (the row's label joins theirs).

    Returns:
        ``uint8 [H, W, 3]`` RGB sheet.

    Example:
        >>> c = np.zeros((16, 16, 3), np.uint8); m = np.zeros((16, 16), np.uint8)
        >>> face_sheet([("a", c, m, c)] * 4, per_row=3).shape[1]
        164
    """
    rows, labels = [], []
    for i in range(0, len(faces), per_row):
        chunk = faces[i : i + per_row]
        rows.append([t for _, crop, mask, out in chunk for t in (crop, mask, out)])
        labels.append("   ".join(label for label, *_ in chunk))
    labels[0] = f"{labels[0]}   ({SHEET_COLUMNS})"
    return image_grid(rows, labels)
