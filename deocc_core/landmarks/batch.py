"""Batch landmark detection: images or folders in; a ``.pts`` per face, an overlay per image out.

Output naming: ``<name>_<k>.pts`` with ``k`` the 0-based face index left to right (the
detector's order), and ``<name>_landmarks.png`` (the photo with the points drawn); ``<name>``
is the image's path below the folder it was found in, without suffix
(:func:`deocc_core.fileio.output_names`). Inputs that give no face are reported, not fatal;
a write that fails (disk full, permission denied) stops the run with the path and reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from deocc_core.errors import InputError, SkipInput
from deocc_core.fileio import output_names, write_error
from deocc_core.imageio import is_image_path, read_image, write_image
from deocc_core.landmarks.detect import LandmarkDetector
from deocc_core.landmarks.find import landmarks_for
from deocc_core.landmarks.readers import write_pts

__all__ = ["LandmarkRun", "expand_inputs", "detect_to_files"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LandmarkRun:
    """Result of :func:`detect_to_files`.

    Attributes:
        n_images: images read. n_faces: faces written (.pts files).
        per_image: ``(image path, number of faces, detectors used)`` for each image read.
        skipped: ``(path, reason)`` for every input that gave no face (unreadable,
            truncated, not an image, no face found).
    """

    n_images: int
    n_faces: int
    per_image: tuple[tuple[str, int, str], ...]
    skipped: tuple[tuple[str, str], ...]


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders expanded recursively to every file in them (sorted).

    Example:
        >>> expand_inputs([])
        []
    """
    return [p for p, _ in output_names(list(inputs))]


def detect_to_files(
    inputs: Iterable[str | Path],
    out: str | Path,
    detector: LandmarkDetector,
    progress: Callable[[int], None] | None = None,
) -> LandmarkRun:
    """Detect faces + 68 landmarks in images (or folders of images) and write them out.

    Output names keep each image's path below the folder it was found in (see
    :func:`deocc_core.fileio.output_names`): ``a/face.jpg`` and ``b/face.jpg`` never
    overwrite each other.

    Args:
        inputs: image files and/or folders (recursive).
        out: output folder (created).
        detector: e.g. ``make_detector("dlib")``.
        progress: called with 1 after each input.

    Returns:
        A :class:`LandmarkRun`; non-image files and images without a face are in ``skipped``.

    Raises:
        InputError: an output cannot be written (disk full, permission denied): the path
            and the reason; that image's outputs are removed, earlier images' are kept.

    Example:
        >>> import tempfile, pathlib
        >>> from deocc_core.landmarks.detect import make_detector
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = cv2.imwrite(str(d / "blank.png"), np.zeros((40, 40, 3), np.uint8))
        >>> detect_to_files([d], d / "out", make_detector("dlib", detector="hog")).skipped[0][1]
        'no face found'
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    per_image: list[tuple[str, int, str]] = []
    skipped: list[tuple[str, str]] = []
    n_faces = 0
    for path, name in output_names(list(inputs)):
        try:
            if not is_image_path(path):
                raise SkipInput("not an image", str(path))
            img = read_image(path)
            faces = landmarks_for(path, img, "detector", detector)
            if not faces:
                raise SkipInput("no face found", str(path))
        except SkipInput as e:
            skipped.append((str(path), e.reason))
            log.debug("skipped %s: %s", path, e.reason)
            if progress:
                progress(1)
            continue
        _write_outputs(out / name, img, faces)
        per_image.append((str(path), len(faces), ",".join(f.detector for f in faces)))
        n_faces += len(faces)
        if progress:
            progress(1)
    n_read = len(per_image) + sum(r == "no face found" for _, r in skipped)
    return LandmarkRun(n_read, n_faces, tuple(per_image), tuple(skipped))


def _write_outputs(stem: Path, img: np.ndarray, faces: list) -> None:
    """``<stem>_<k>.pts`` per face and ``<stem>_landmarks.png``; all or none of them."""
    written: list[Path] = []
    try:
        try:
            stem.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(stem.parent, e, "create folder") from None
        overlay = img.copy()
        r = max(1, round(max(img.shape[:2]) / 300))
        for k, f in enumerate(faces):
            written.append(write_pts(f"{stem}_{k}.pts", f.landmarks))
            x0, y0, x1, y1 = (int(round(float(v))) for v in f.box)
            cv2.rectangle(overlay, (x0, y0), (x1, y1), (0, 160, 255), r)
            cv2.putText(
                overlay,
                str(k),
                (x0, max(12, y0 - 4)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4 * r,
                (0, 160, 255),
                r,
            )
            for x, y in np.rint(f.landmarks).astype(int):
                cv2.circle(overlay, (int(x), int(y)), r + 1, (0, 255, 0), -1)
        written.append(write_image(f"{stem}_landmarks.png", overlay))
    except InputError:
        for p in written:
            p.unlink(missing_ok=True)
        raise
