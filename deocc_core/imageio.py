"""Image files in and out: the one place OpenCV's BGR meets our RGB.

Images are ``uint8 [H, W, 3]`` RGB (or ``[H, W]`` grey for masks) everywhere in deocc;
:func:`read_image` and :func:`write_image` convert at the file boundary and check the
result, so a failed read or write is an error naming the file, never a silent ``None`` or
``False``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.errors import InputError, SkipInput

__all__ = ["IMAGE_SUFFIXES", "read_image", "write_image", "is_image_path"]

log = logging.getLogger(__name__)

# every format read_image decodes is also found in folders (GIF: its first frame)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")


def is_image_path(path: str | Path) -> bool:
    """True when the file name ends in one of :data:`IMAGE_SUFFIXES` (any case).

    Example:
        >>> is_image_path("a/b.JPG"), is_image_path("a/b.pts")
        (True, False)
    """
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path) -> npt.NDArray[np.uint8]:
    """Read an image file as uint8 RGB ``[H, W, 3]`` (grey and RGBA files are converted).

    Raises:
        SkipInput: the file cannot be decoded (``reason`` "unreadable"), or it is a
            JPEG without its end marker (``reason`` "truncated": OpenCV would decode it with
            grey bottom rows and only a warning).

    Example:
        >>> read_image("/nonexistent.png")
        Traceback (most recent call last):
        ...
        deocc_core.errors.SkipInput: unreadable: /nonexistent.png
    """
    path = Path(path)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SkipInput("unreadable", str(path))
    if path.suffix.lower() in (".jpg", ".jpeg"):
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 4096))
            if b"\xff\xd9" not in f.read():
                raise SkipInput("truncated", str(path))
    _warn_if_transparent(path)
    return np.ascontiguousarray(img[:, :, ::-1])


def _warn_if_transparent(path: Path) -> None:
    """One warning when a PNG has see-through pixels: their alpha is dropped, not blended."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError:
        return
    # IHDR colour type (byte 25): 4 grey + alpha, 6 RGBA; a tRNS chunk is rare in photos
    if not (head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 26 and head[25] in (4, 6)):
        return
    full = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if full is None or full.ndim != 3 or full.shape[2] != 4:
        return
    alpha = full[:, :, 3]
    opaque = np.iinfo(alpha.dtype).max
    clear = float((alpha < opaque).mean())
    if clear > 0:
        log.warning(
            "%s: %.1f%% of its pixels are transparent; their transparency is ignored (the "
            "colour stored under them is used)",
            path,
            100 * clear,
        )


def write_image(path: str | Path, image: npt.NDArray[np.uint8]) -> Path:
    """Write a uint8 RGB ``[H, W, 3]`` (or grey ``[H, W]``) image; the format follows the suffix.

    Encoded in memory first, then written with Python's own file calls, so a failure names
    its cause; a partly written file is removed.

    Raises:
        InputError: the image cannot be encoded with that suffix, or the file cannot be
            written: the path and the reason (``no space left on device``, ``permission
            denied``, ``no such file or directory``, ...).

    Example:
        >>> import tempfile
        >>> p = write_image(Path(tempfile.mkdtemp()) / "a.png", np.zeros((4, 5, 3), np.uint8))
        >>> read_image(p).shape
        (4, 5, 3)
    """
    path = Path(path)
    a = np.asarray(image)
    bgr = a[:, :, ::-1] if a.ndim == 3 else a
    try:
        ok, buf = cv2.imencode(path.suffix or ".", np.ascontiguousarray(bgr))
    except cv2.error as e:  # e.g. an unknown extension
        raise InputError(f"{path}: cannot write image ({str(e).strip()[:80]})") from None
    if not ok:
        raise InputError(f"{path}: cannot encode the image as {path.suffix or 'nothing'}")
    opened = False
    try:
        with open(path, "wb") as f:
            opened = True
            f.write(buf.tobytes())
    except OSError as e:
        if opened:  # a partly written file; never remove a file we could not open
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
        reason = (e.strerror or str(e)).lower()
        raise InputError(f"{path}: cannot write image: {reason}") from None
    return path
