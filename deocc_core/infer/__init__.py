"""Inference: de-occlude faces in photos, paste back where G's mask says, expression edits."""

from deocc_core.infer.grid import face_sheet
from deocc_core.infer.paste import (
    PasteConfig,
    paste_back,
    paste_crop,
    paste_into,
    paste_region,
    paste_weight,
)
from deocc_core.infer.pipeline import (
    MIN_FACE_PX,
    FaceOutput,
    PhotoOutput,
    deocclude,
    deocclude_face,
    expression_coefficients,
)
from deocc_core.infer.run import (
    InferConfig,
    InferResult,
    list_images,
    plan_outputs,
    run_inference,
)

__all__ = [
    "MIN_FACE_PX",
    "FaceOutput",
    "PhotoOutput",
    "deocclude",
    "deocclude_face",
    "expression_coefficients",
    "PasteConfig",
    "paste_back",
    "paste_into",
    "paste_crop",
    "paste_region",
    "paste_weight",
    "face_sheet",
    "InferConfig",
    "InferResult",
    "list_images",
    "plan_outputs",
    "run_inference",
]
