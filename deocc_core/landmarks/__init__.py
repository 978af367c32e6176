"""68-point landmarks: the iBUG scheme, named parts, detectors, annotation readers.

Also where a photo's landmarks come from (``landmarks_for``: its sidecar, else a detector).
"""

from deocc_core.landmarks.batch import LandmarkRun, detect_to_files, expand_inputs
from deocc_core.landmarks.detect import (
    DETECTORS,
    DetectedFace,
    LandmarkDetector,
    make_detector,
)
from deocc_core.landmarks.find import LANDMARK_SOURCES, LazyDetector, find_sidecar, landmarks_for
from deocc_core.landmarks.ibug import N_LANDMARKS, IbugScheme, ibug_scheme
from deocc_core.landmarks.parts import part, point, point_names, points
from deocc_core.landmarks.readers import (
    MatAnnotation,
    find_annotation,
    read_annotation,
    read_mat_annotation,
    read_pts,
    write_pts,
)

__all__ = [
    "N_LANDMARKS",
    "IbugScheme",
    "ibug_scheme",
    "part",
    "point",
    "points",
    "point_names",
    "DetectedFace",
    "LandmarkDetector",
    "DETECTORS",
    "make_detector",
    "MatAnnotation",
    "read_pts",
    "write_pts",
    "read_mat_annotation",
    "find_annotation",
    "read_annotation",
    "LANDMARK_SOURCES",
    "LazyDetector",
    "find_sidecar",
    "landmarks_for",
    "LandmarkRun",
    "expand_inputs",
    "detect_to_files",
]
