"""``deocc-infer --mask FILE|DIR``: the user says what is occluded.

A mask is any image of the photo's size: white (or the largest channel's value) = occluded,
black = keep. A folder of masks is matched to the photos by name: for the photo whose
output name is ``sub/face`` (:func:`deocc_core.infer.run.plan_outputs`), the first of
``DIR/sub/face.<ext>``, ``DIR/sub/face_mask.<ext>``, ``DIR/face.<ext>``,
``DIR/face_mask.<ext>`` that exists, for any image suffix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from deocc_core.errors import InputError, SkipInput
from deocc_core.imageio import IMAGE_SUFFIXES, read_image

__all__ = ["find_user_mask", "read_user_mask"]


def find_user_mask(mask: str | Path, name: str) -> Path:
    """The mask file for the photo with output name ``name`` (a file ``mask``: itself).

    Raises:
        SkipInput: ``"no mask"`` when the folder has none for this photo (the photo is
            skipped and counted, never de-occluded where the model guesses instead).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); _ = (d / "face_mask.png").write_bytes(b"")
        >>> find_user_mask(d, "photos/face").name
        'face_mask.png'
    """
    m = Path(mask)
    if not m.is_dir():
        return m
    rel = Path(name)
    for stem in (rel, rel.parent / f"{rel.name}_mask", Path(rel.name), Path(f"{rel.name}_mask")):
        for suffix in sorted(IMAGE_SUFFIXES):
            for cand in (m / f"{stem}{suffix}", m / f"{stem}{suffix.upper()}"):
                if cand.is_file():
                    return cand
    raise SkipInput("no mask", f"{m}: no mask for {name} ({rel.name}.png or {rel.name}_mask.png)")


def read_user_mask(path: str | Path, shape: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """A user's occlusion mask for a photo of ``shape`` ``(H, W)``: ``[H, W]`` uint8 0..255.

    Raises:
        InputError: unreadable, or not the photo's size (the message names the file).
    """
    try:
        rgb = read_image(path)
    except SkipInput as e:  # unreadable / truncated: fatal for the photo it belongs to
        raise InputError(str(e) if str(path) in str(e) else f"{path}: {e}") from None
    if rgb.shape[:2] != tuple(shape):
        raise InputError(
            f"{path}: mask is {rgb.shape[1]}x{rgb.shape[0]} px, the photo {shape[1]}x{shape[0]}"
        )
    return rgb.max(-1).astype(np.uint8)
