"""Where a photo's 68 landmarks come from: a sidecar annotation beside it, or a detector.

One function, :func:`landmarks_for`, serves ``deocc-infer``, ``synth-occ fit``, ``synth-occ
landmarks`` and the folder source of ``synth-occ build``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from deocc_core.errors import ConfigError, DeoccError, SkipInput
from deocc_core.landmarks.detect import (
    DEFAULT_BACKEND,
    DetectedFace,
    LandmarkDetector,
    make_detector,
)
from deocc_core.landmarks.readers import find_annotation, read_annotation

__all__ = ["LANDMARK_SOURCES", "MIN_DETECT_PX", "LazyDetector", "find_sidecar", "landmarks_for"]

# auto: the sidecar if there is one, else the detector; pts / mat: the sidecar only
LANDMARK_SOURCES = ("detector", "pts", "mat", "auto")
MIN_DETECT_PX = 24  # smaller images hold no face a detector finds (dlib fails on 1 px ones)


class LazyDetector:
    """A detector built on its first use (photos with sidecars never load the models).

    Args:
        backend: landmark backend name (``dlib`` | ``fan``), see ``make_detector``.
    """

    def __init__(self, backend: str = DEFAULT_BACKEND) -> None:
        self.backend = backend
        self._detector: LandmarkDetector | None = None

    def detect(self, image: npt.NDArray[np.uint8]) -> list[DetectedFace]:
        """Faces of ``image`` (uint8 RGB), left to right; builds the detector first if needed."""
        if self._detector is None:
            self._detector = make_detector(self.backend)
        return self._detector.detect(image)


def find_sidecar(image_path: Path, kind: str = "auto") -> Path | None:
    """The annotation file of an image.

    ``<stem>.<kind>`` first, else any sidecar (``<stem>.pts``, ``<stem>.mat``, 300W-LP
    ``landmarks/<set>/<stem>_pts.mat``).

    Args:
        image_path: the photo.
        kind: ``pts``, ``mat`` or ``auto`` (no preferred suffix).

    Example:
        >>> find_sidecar(Path("/nonexistent/a.jpg"), "pts") is None
        True
    """
    if kind in ("pts", "mat"):
        own = image_path.with_suffix("." + kind)
        if own.is_file():
            return own
    return find_annotation(image_path)


def landmarks_for(
    image_path: Path,
    image: npt.NDArray[np.uint8],
    source: str = "auto",
    detector: LandmarkDetector | None = None,
) -> list[DetectedFace]:
    """The faces of one photo with their 68 landmarks (photo pixels, 0-based).

    Args:
        image_path: the photo's path (sidecars are looked up beside it).
        image: the photo, uint8 RGB ``[H, W, 3]`` (what the detector sees).
        source: ``pts`` / ``mat``: the sidecar (:func:`find_sidecar`); ``detector``: every
            face the detector finds; ``auto``: the sidecar if any, else the detector.
        detector: required for ``detector``, and for ``auto`` when there is no sidecar.

    Returns:
        One :class:`DetectedFace` per face, left to right (none when the detector finds none).
        A sidecar gives one face with ``detector`` = its suffix (``pts`` / ``mat``), score 1
        and the landmarks' bounding box.

    Raises:
        SkipInput: ``no annotation`` (``pts`` / ``mat`` without a sidecar), ``bad
            annotation`` (a sidecar that cannot be read, or non-finite coordinates) or ``too
            small`` (an image under :data:`MIN_DETECT_PX` for the detector).
        ConfigError: unknown ``source``, or a detector needed but not given.
    """
    if source not in LANDMARK_SOURCES:
        raise ConfigError(
            f"landmark source must be one of {', '.join(LANDMARK_SOURCES)}, got {source!r}"
        )
    if source != "detector":
        ann = find_sidecar(image_path, source)
        if ann is not None:
            return [_read_sidecar(ann)]
        if source != "auto":
            raise SkipInput("no annotation", f"{image_path}: no .{source} landmarks beside it")
    if detector is None:
        raise ConfigError(f"{image_path}: landmarks from a detector, but none was given")
    h, w = image.shape[:2]
    if min(h, w) < MIN_DETECT_PX:
        raise SkipInput(
            "too small", f"{image_path}: {w}x{h} px, a detector needs {MIN_DETECT_PX} px or more"
        )
    return detector.detect(image)


def _read_sidecar(ann: Path) -> DetectedFace:
    try:
        lm = read_annotation(ann)
    except DeoccError as e:
        raise SkipInput("bad annotation", str(e)) from None
    box = np.concatenate([lm.min(0), lm.max(0)]).astype(np.float32)
    return DetectedFace(box, lm, 1.0, ann.suffix.lstrip("."))
