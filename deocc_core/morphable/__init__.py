"""The morphable model: the model format and loaders, the parameter layout, the camera, the fit."""

from deocc_core.morphable.camera import estimate_pose, project, rotation_angles, rotation_matrix
from deocc_core.morphable.ddfa import DDFA_MODELS, params_from_ddfa, pose_from_ddfa
from deocc_core.morphable.fit import (
    FitConfig,
    FitResult,
    fit_landmarks,
    fit_landmarks_batch,
    landmark_nme,
)
from deocc_core.morphable.model import MorphableModel, load_model, starter_model_path
from deocc_core.morphable.params import (
    POSE_FIELDS,
    POSE_SIZE,
    FitParams,
    Pose,
    pack_params,
    unpack_params,
)

__all__ = [
    "MorphableModel",
    "load_model",
    "starter_model_path",
    "Pose",
    "FitParams",
    "POSE_FIELDS",
    "POSE_SIZE",
    "pack_params",
    "unpack_params",
    "rotation_matrix",
    "rotation_angles",
    "project",
    "estimate_pose",
    "FitConfig",
    "FitResult",
    "fit_landmarks",
    "fit_landmarks_batch",
    "landmark_nme",
    "DDFA_MODELS",
    "params_from_ddfa",
    "pose_from_ddfa",
]
