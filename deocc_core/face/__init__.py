"""From a photo and its landmarks to G's input: the crop, its inverse, the 3DMM fit, render, M."""

from deocc_core.face.align import (
    AlignedFace,
    align_face,
    crop_matrix,
    outside_share,
    transform_points,
)
from deocc_core.face.prepare import FaceInput, FaceInputConfig, prepare_face, rerender_face

__all__ = [
    "AlignedFace",
    "align_face",
    "crop_matrix",
    "outside_share",
    "transform_points",
    "FaceInput",
    "FaceInputConfig",
    "prepare_face",
    "rerender_face",
]
