"""Inference: de-occlude faces in photos, paste back, mesh export, expression edits."""

from deocc_core.infer.pipeline import (
    MIN_FACE_PX,
    FaceOutput,
    PhotoOutput,
    deocclude,
    deocclude_face,
    expression_coefficients,
    paste_back,
    vertex_colors,
)
from deocc_core.infer.run import InferConfig, InferResult, list_images, run_inference

__all__ = [
    "MIN_FACE_PX",
    "FaceOutput",
    "PhotoOutput",
    "deocclude",
    "deocclude_face",
    "expression_coefficients",
    "paste_back",
    "vertex_colors",
    "InferConfig",
    "InferResult",
    "list_images",
    "run_inference",
]
