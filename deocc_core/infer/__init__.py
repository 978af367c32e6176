"""Inference: de-occlude faces in photos, fill (G or the completed render), paste back."""

from deocc_core.infer.fill import FILLS, match_render, prefill, render_fill
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
    check_fill,
    check_given,
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
    "check_fill",
    "check_given",
    "FILLS",
    "match_render",
    "prefill",
    "render_fill",
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
