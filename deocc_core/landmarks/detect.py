"""Face + 68-landmark detectors: dlib (offline default) and face-alignment FAN.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.errors import ConfigError, InputError

__all__ = ["DetectedFace", "LandmarkDetector", "DlibDetector", "FanDetector", "make_detector", "dlib_model_dir"]

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

    def detect(self, image: npt.NDArray[np.uint8]) -> list[DetectedFace]: ...


def dlib_model_dir() -> Path:
    """Folder of dlib's model files inside the installed ``face-recognition-models`` package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("face-recognition-models is not installed (pip install face-recognition-models)")
    d = Path(list(spec.submodule_search_locations)[0]) / "models"
    if not (d / "shape_predictor_68_face_landmarks.dat").is_file():
        raise InputError(f"{d}: shape_predictor_68_face_landmarks.dat missing; reinstall face-recognition-models")
    return d


class DlibDetector:
    """dlib HOG (+ CNN fallback) detector with the 68-point shape predictor.

    Args:
        mode: "auto" (HOG, CNN when HOG finds nothing), "hog" or "cnn".
        upsample: HOG image-pyramid upsampling steps (finds smaller faces, slower).
        cnn_upsample: the same for the CNN detector (each step ~4x slower: ~1.2 s per
            450 px image on one CPU core at 0).
    """

    def __init__(self, mode: str = "auto", upsample: int = 1, cnn_upsample: int = 0) -> None:
        import dlib

        if mode not in ("auto", "hog", "cnn"):
            raise ConfigError(f"dlib detector mode must be auto, hog or cnn, got {mode!r}")
        d = dlib_model_dir()
        self.mode, self.upsample, self.cnn_upsample = mode, upsample, cnn_upsample
        self._hog = dlib.get_frontal_face_detector()
        self._cnn = dlib.cnn_face_detection_model_v1(str(d / "mmod_human_face_detector.dat")) if mode != "hog" else None
        self._predictor = dlib.shape_predictor(str(d / "shape_predictor_68_face_landmarks.dat"))

    def boxes(self, image: npt.NDArray[np.uint8]) -> list[tuple[np.ndarray, float, str]]:
        """Face boxes ``(box [4], score, detector)`` without landmarks."""
        out: list[tuple[np.ndarray, float, str]] = []
        if self.mode in ("auto", "hog"):
            rects, scores, _ = self._hog.run(image, self.upsample, 0.0)
            out = [(np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32), float(s), "hog") for r, s in zip(rects, scores)]
        if self._cnn is not None and (self.mode == "cnn" or not out):
            for det in self._cnn(image, self.cnn_upsample):
                r = det.rect
                out.append((np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32), float(det.confidence), "cnn"))
        return out

    def landmarks_in(self, image: npt.NDArray[np.uint8], box: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
        """68 landmarks inside a given box ``[4]`` (x0, y0, x1, y1)."""
        import dlib

        rect = dlib.rectangle(*(int(round(v)) for v in box))
        shape = self._predictor(image, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], np.float32)

    def detect(self, image: npt.NDArray[np.uint8]) -> list[DetectedFace]:
        """Detect faces and their 68 landmarks, left to right.

        Args:
            image: ``[H, W, 3]`` uint8 RGB.
        """
        image = np.ascontiguousarray(check_array(np.asarray(image), "image", (None, None, 3), np.uint8))
        faces = [DetectedFace(b, self.landmarks_in(image, b), s, name) for b, s, name in self.boxes(image)]
        return sorted(faces, key=lambda f: float(f.box[0]))


class FanDetector:
    """face-alignment's 2D FAN (the paper's landmark detector), offline only.

    Args:
        device: "cpu" or "cuda".
        weights_dir: folder holding FAN's checkpoint files (``2DFAN4-*.zip`` and the
            face detector ``s3fd-*.pth``); default the torch hub cache
            (``$TORCH_HOME/hub/checkpoints``, usually ``~/.cache/torch/hub/checkpoints``).
    """

    def __init__(self, device: str = "cpu", weights_dir: str | Path | None = None) -> None:
        if importlib.util.find_spec("face_alignment") is None:
            raise InputError("the fan backend needs face-alignment: pip install 'deocc[fan]' (or use --backend dlib)")
        import torch

        hub = Path(weights_dir) if weights_dir else Path(torch.hub.get_dir()) / "checkpoints"
        have = sorted(p.name for p in hub.glob("2DFAN4*")) if hub.is_dir() else []
        if not have:
            raise InputError(
                f"FAN weights not found in {hub}: download 2DFAN4-cd938726ad.zip and s3fd-619a316812.pth "
                "from the face-alignment release page into that folder (deocc never downloads at run time)"
            )
        if weights_dir:
            os.environ["TORCH_HOME"] = str(hub.parent.parent)
        import face_alignment

        self._fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device=device, flip_input=False)

    def detect(self, image: npt.NDArray[np.uint8]) -> list[DetectedFace]:
        """Detect faces and 68 landmarks, left to right (``image`` uint8 RGB)."""
        preds = self._fa.get_landmarks_from_image(image, return_bboxes=True)
        if preds is None or preds[0] is None:
            return []
        faces = []
        for lm, box in zip(preds[0], preds[2]):
            faces.append(DetectedFace(np.asarray(box[:4], np.float32), np.asarray(lm[:, :2], np.float32), float(box[4]) if len(box) > 4 else 1.0, "fan"))
        return sorted(faces, key=lambda f: float(f.box[0]))


def make_detector(backend: str = "dlib", **kwargs) -> LandmarkDetector:
    """Build a detector: ``"dlib"`` (kwargs: mode, upsample) or ``"fan"`` (device, weights_dir).

    Example:
        >>> det = make_detector("dlib", mode="hog")
        >>> det.detect(np.zeros((64, 64, 3), np.uint8))
        []
    """
    if backend == "dlib":
        return DlibDetector(**kwargs)
    if backend == "fan":
        return FanDetector(**kwargs)
    raise ConfigError(f"unknown landmark backend {backend!r} (expected dlib or fan)")
