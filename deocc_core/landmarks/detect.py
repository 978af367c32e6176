"""Face + 68-landmark detectors, all offline: MediaPipe (default), dlib and FAN.

The default is the occlusion-robust MediaPipe face mesh (:mod:`deocc_core.landmarks.facemesh`).

dlib uses the HOG detector and, when HOG finds nothing (typically beyond ~45° yaw) or on
request, the CNN (MMOD) detector; both model files and the 68-point shape predictor ship
in the ``face-recognition-models`` package, so nothing downloads. FAN (``pip install
deocc[fan]``) is the occlusion-robust network the paper uses; its weights are read only
from a local file or the torch hub cache.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.errors import ConfigError, InputError

__all__ = [
    "DetectedFace",
    "LandmarkDetector",
    "DlibDetector",
    "FanDetector",
    "make_detector",
    "dlib_model_dir",
    "DETECTORS",
    "DLIB_DETECTORS",
    "DEFAULT_BACKEND",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectedFace:
    """One detected face.

    Attributes:
        box: ``[4]`` float32 (x0, y0, x1, y1) pixels.
        landmarks: ``[68, 2]`` float32 iBUG order, 0-based pixels.
        score: detector confidence (backend-specific scale).
        detector: which detector found the box ("hog", "cnn", "fan").
    """

    box: npt.NDArray[np.float32]
    landmarks: npt.NDArray[np.float32]
    score: float
    detector: str


class LandmarkDetector(Protocol):
    """Anything with ``detect(image uint8 [H, W, 3] RGB) -> list[DetectedFace]`` (left to right)."""

    def detect(self, image: npt.NDArray[np.uint8]) -> list[DetectedFace]:
        """Faces of ``image``, left to right."""
        ...


def dlib_model_dir() -> Path:
    """Folder of dlib's model files inside the installed ``face-recognition-models`` package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "face-recognition-models is not installed (pip install face-recognition-models)"
        )
    d = Path(list(spec.submodule_search_locations)[0]) / "models"
    if not (d / "shape_predictor_68_face_landmarks.dat").is_file():
        raise InputError(
            f"{d}: shape_predictor_68_face_landmarks.dat missing; reinstall face-recognition-models"
        )
    return d


DLIB_DETECTORS = ("hog", "cnn", "hog+cnn")
_MODE_ALIASES = {"auto": "hog+cnn", "hog": "hog", "cnn": "cnn", "hog+cnn": "hog+cnn"}


def _box(r) -> np.ndarray:
    return np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32)


class DlibDetector:
    """dlib HOG and/or CNN (MMOD) face detector with the 68-point shape predictor, offline.

    Search order until something is found: HOG on the image, HOG on the mirrored image
    (dlib's HOG is trained on slightly asymmetric views, so the mirror finds some turned
    faces the original misses), then the CNN (``"hog+cnn"``), which reaches further
    into profile (~±60° yaw) at ~10x the cost. Landmarks of a face found on the mirror
    are predicted on the mirror and mapped back (x → W-1-x, iBUG mirror permutation).

    Args:
        detector: "hog+cnn" (default: HOG, CNN fallback), "hog" or "cnn". ``mode`` is
            an alias (``"auto"`` = ``"hog+cnn"``).
        upsample: HOG image-pyramid upsampling steps (1 finds faces down to ~40 px).
        cnn_upsample: the same for the CNN (each step ~4x slower; 0 finds faces down
            to ~80 px).
        flip: also try the mirrored image when nothing is found.

    Models are loaded in the instance (lazily for the CNN), never in module globals.
    """

    def __init__(
        self,
        detector: str = "hog+cnn",
        upsample: int = 1,
        cnn_upsample: int = 0,
        flip: bool = True,
        mode: str | None = None,
    ) -> None:
        import dlib

        name = mode if mode is not None else detector
        if name not in _MODE_ALIASES:
            raise ConfigError(
                f"dlib detector must be one of {', '.join(DLIB_DETECTORS)}, got {name!r}"
            )
        self._dir = dlib_model_dir()
        self.detector = _MODE_ALIASES[name]
        self.mode = self.detector  # backwards-compatible name
        self.upsample, self.cnn_upsample, self.flip = int(upsample), int(cnn_upsample), bool(flip)
        self._hog = dlib.get_frontal_face_detector() if self.detector != "cnn" else None
        self._cnn_model = None
        self._predictor = dlib.shape_predictor(
            str(self._dir / "shape_predictor_68_face_landmarks.dat")
        )

    @property
    def _cnn(self):
        if self._cnn_model is None:
            import dlib

            self._cnn_model = dlib.cnn_face_detection_model_v1(
                str(self._dir / "mmod_human_face_detector.dat")
            )
        return self._cnn_model

    def _run(self, image: np.ndarray, which: str) -> list[tuple[np.ndarray, float, str]]:
        if which == "hog":
            rects, scores, _ = self._hog.run(image, self.upsample, 0.0)
            return [(_box(r), float(sc), "hog") for r, sc in zip(rects, scores, strict=True)]
        return [
            (_box(d.rect), float(d.confidence), "cnn") for d in self._cnn(image, self.cnn_upsample)
        ]

    def boxes(self, image: npt.NDArray[np.uint8]) -> list[tuple[np.ndarray, float, str, bool]]:
        """Face boxes ``(box [4] in image pixels, score, detector, found_on_mirror)``."""
        image = np.ascontiguousarray(image)
        w = image.shape[1]
        stages = (
            ["hog"]
            if self.detector == "hog"
            else ["cnn"]
            if self.detector == "cnn"
            else ["hog", "cnn"]
        )
        for which in stages:
            found = [(b, sc, n, False) for b, sc, n in self._run(image, which)]
            if not found and self.flip and which == "hog":
                mirror = np.ascontiguousarray(image[:, ::-1])
                found = [
                    (
                        np.array([w - 1 - b[2], b[1], w - 1 - b[0], b[3]], np.float32),
                        sc,
                        n + "-flip",
                        True,
                    )
                    for b, sc, n in self._run(mirror, which)
                ]
            if found:
                return found
        return []

    def landmarks_in(
        self, image: npt.NDArray[np.uint8], box: npt.NDArray[np.floating], mirrored: bool = False
    ) -> npt.NDArray[np.float32]:
        """68 landmarks ``[68, 2]`` float32 inside a box ``[4]`` (x0, y0, x1, y1) of ``image``.

        With ``mirrored`` the predictor runs on the mirrored image and the points are
        mapped back (for faces the detector found only on the mirror).
        """
        import dlib

        w = image.shape[1]
        if mirrored:
            image = np.ascontiguousarray(image[:, ::-1])
            box = np.array([w - 1 - box[2], box[1], w - 1 - box[0], box[3]])
        rect = dlib.rectangle(*(int(round(float(v))) for v in box))
        shape = self._predictor(np.ascontiguousarray(image), rect)
        lm = np.array([[p.x, p.y] for p in shape.parts()], np.float32)
        if mirrored:
            from deocc_core.landmarks.ibug import ibug_scheme

            lm = lm[ibug_scheme().mirror]
            lm[:, 0] = w - 1 - lm[:, 0]
        return lm

    def detect(self, image: npt.NDArray[np.uint8]) -> list[DetectedFace]:
        """Detect faces and their 68 landmarks, left to right.

        Args:
            image: ``[H, W, 3]`` uint8 RGB.

        Returns:
            Faces sorted by box left edge; ``detector`` is "hog", "hog-flip" or "cnn".

        Example:
            >>> DlibDetector("hog").detect(np.zeros((32, 32, 3), np.uint8))
            []
        """
        image = np.ascontiguousarray(
            check_array(np.asarray(image), "image", (None, None, 3), np.uint8)
        )
        faces = [
            DetectedFace(b, self.landmarks_in(image, b, m), sc, n)
            for b, sc, n, m in self.boxes(image)
        ]
        return sorted(faces, key=lambda f: float(f.box[0]))


#: face-alignment >= 1.3 weight files (TorchScript FAN + S3FD face detector), download folder
FAN_WEIGHTS = ("2DFAN4-cd938726ad.zip", "s3fd-619a316812.pth")
FAN_WEIGHTS_URL = "https://www.adrianbulat.com/downloads/python-fan/"


class FanDetector:
    """face-alignment's 2D FAN (the paper's landmark detector), offline only.

    Args:
        device: "cpu" or "cuda".
        weights_dir: a ``.../hub/checkpoints`` folder holding :data:`FAN_WEIGHTS`
            (``2DFAN4-cd938726ad.zip`` and the face detector ``s3fd-619a316812.pth``, from
            :data:`FAN_WEIGHTS_URL`); default the torch hub cache
            (``$TORCH_HOME/hub/checkpoints``, usually ``~/.cache/torch/hub/checkpoints``).
    """

    def __init__(self, device: str = "cpu", weights_dir: str | Path | None = None) -> None:
        if importlib.util.find_spec("face_alignment") is None:
            raise InputError(
                "the fan backend needs face-alignment: pip install 'deocc[fan]' "
                "(or use --backend mediapipe)"
            )
        import torch

        hub = Path(weights_dir) if weights_dir else Path(torch.hub.get_dir()) / "checkpoints"
        missing = [f for f in FAN_WEIGHTS if not (hub / f).is_file()]
        if missing:
            raise InputError(
                f"{hub}: FAN weights missing ({', '.join(missing)}); download "
                + " and ".join(FAN_WEIGHTS_URL + f for f in missing)
                + " into that folder, or pass weights_dir / --fan-weights "
                "(deocc never downloads at run time)"
            )
        if weights_dir:
            os.environ["TORCH_HOME"] = str(
                hub.parent.parent
            )  # face-alignment looks in $TORCH_HOME/hub/checkpoints
        import face_alignment

        kind = (
            getattr(face_alignment.LandmarksType, "TWO_D", None) or face_alignment.LandmarksType._2D
        )
        self._fa = face_alignment.FaceAlignment(kind, device=device, flip_input=False)

    def detect(self, image: npt.NDArray[np.uint8]) -> list[DetectedFace]:
        """Detect faces and 68 landmarks, left to right (``image`` uint8 RGB)."""
        preds = self._fa.get_landmarks_from_image(image, return_bboxes=True)
        if preds is None or preds[0] is None:
            return []
        faces = []
        for lm, box in zip(preds[0], preds[2], strict=True):
            faces.append(
                DetectedFace(
                    np.asarray(box[:4], np.float32),
                    np.asarray(lm[:, :2], np.float32),
                    float(box[4]) if len(box) > 4 else 1.0,
                    "fan",
                )
            )
        return sorted(faces, key=lambda f: float(f.box[0]))


def _facemesh(**kwargs: Any) -> LandmarkDetector:
    from deocc_core.landmarks.facemesh import FaceMeshDetector

    return FaceMeshDetector(**kwargs)


DETECTORS: dict[str, Callable[..., LandmarkDetector]] = {
    "mediapipe": _facemesh,
    "dlib": DlibDetector,
    "fan": FanDetector,
}
#: the default landmark backend everywhere (deocc-infer, synth-occ landmarks / fit / build):
#: MediaPipe finds masked faces dlib misses (tools/bench/bench_landmarks_occluded.py)
DEFAULT_BACKEND = "mediapipe"


def make_detector(name: str = DEFAULT_BACKEND, **kwargs: Any) -> LandmarkDetector:
    """Build a detector by name from :data:`DETECTORS`.

    Args:
        name: "mediapipe" (the default), "dlib" or "fan".
        **kwargs: the backend's options: mediapipe: min_presence, min_detection, pad,
            whole_image, max_faces; dlib: detector, upsample, cnn_upsample, flip; fan:
            device, weights_dir.

    Raises:
        ConfigError: unknown name (the message lists the valid ones) or bad option.

    Example:
        >>> det = make_detector("dlib", detector="hog")
        >>> det.detect(np.zeros((64, 64, 3), np.uint8))
        []
    """
    if name not in DETECTORS:
        raise ConfigError(
            f"unknown landmark backend {name!r} (valid: {', '.join(sorted(DETECTORS))})"
        )
    try:
        return DETECTORS[name](**kwargs)
    except TypeError as e:
        raise ConfigError(f"landmark backend {name}: {e}") from None
