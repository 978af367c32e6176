"""The 3DMM parameters 300W-LP and AFLW2000-3D ship (3DDFA's convention) as our FitParams.

Both datasets were built by 3DDFA's authors (Zhu et al.): each ``.mat`` holds the BFM fit of
its image, ``Shape_Para`` [199], ``Exp_Para`` [29] and ``Pose_Para`` [7]. The paper uses them
instead of fitting; :func:`params_from_ddfa` turns them into :class:`FitParams` for a model
loaded from 3DDFA's BFM files, so the render / mask M come from the dataset's own fit.

Checked on the shared data (tests/morphable/test_ddfa.py): through the 68-landmark basis of
3DDFA (``c++/weights``: the leading 40 shape and 10 expression modes), the converted
parameters reproduce the ``pt3d_68`` of the 13 AFLW2000-3D faces to 1.1 px mean (0.3-2.2 px
per face, 450 px images; the rest is the 159 + 19 modes the basis leaves out) and their
depth row, and the 2D ``pt2d`` of the 300W-LP sample to 4 px on the inner 51 points (its jaw
points are drawn on the silhouette, not on fixed vertices: 22 px at 44° yaw).

Convention:
    Theirs (3DDFA's MATLAB code): ``vertex = u + W_shp α + W_exp β`` in micrometres (BFM
    units), α = ``Shape_Para`` on the BFM shape PCs (unit columns), β = ``Exp_Para`` on
    3DDFA's 29 expression columns; ``p = scale · R_d · vertex + [tx, ty, tz]`` with
    ``Pose_Para = [pitch, yaw, roll, tx, ty, tz, scale]`` (radians; pixels; pixels per µm)
    and ``R_d = (Rz(roll) Ry(yaw) Rx(pitch))ᵀ = Rx(-pitch) Ry(-yaw) Rz(-roll)``; the image
    point is ``x = p_x``, ``y = H + 1 - p_y``, 1-based (MATLAB), y flipped (H = image
    height); ``p_z`` is the depth (``pt3d_68`` row 3), larger = closer.

    Ours (:mod:`deocc_core.morphable.params`): the same rotation matrix, ``R = R_d``, read
    back as our (pitch, yaw, roll) with :func:`~deocc_core.morphable.camera.rotation_angles`.
    The two Euler orders differ, so the angles are converted through the matrix: for a pure
    turn our yaw = -``Pose_Para`` yaw (the sign the rest of the code quotes); pitch and roll
    likewise flip sign when alone. ``scale = 1000 · scale_d`` (our BFM models are in mm),
    ``tx = tx_d - 1`` and ``ty = H - ty_d`` (0-based pixels, y down); ``tz`` is dropped (our
    weak-perspective depth has no offset). Coefficients: our 3DDFA loaders store each basis
    column as a unit vector times ``id_std`` / ``exp_std`` = its norm in mm, so
    ``id_coef = α · id_std`` and ``exp_coef = β · exp_std``, over the leading modes the model
    holds (the rest of α, β is dropped).

Note:
    Wiring this into the dataset sources (a ``300w3d`` / ``aflw2000-3d`` reader that takes
    the parameters instead of fitting when the model is one of :data:`DDFA_MODELS`) is the
    next step. BFM2009 ``01_MorphableModel.mat`` models are not accepted: their identity
    columns are the same PCs (α · 1e-3 would be their coefficients), but the expression
    basis our loader attaches (``Exp_Pca.bin``) is not shown to be 300W-LP's 29 columns.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.errors import InputError
from deocc_core.morphable.camera import rotation_angles, rotation_matrix
from deocc_core.morphable.model import MorphableModel
from deocc_core.morphable.params import FitParams, Pose

__all__ = ["DDFA_MODELS", "pose_from_ddfa", "params_from_ddfa"]

# model names our loaders give 3DDFA's BFM bases (model.py): c++/weights (68 landmarks),
# train.configs (u_shp + w_shp_sim), 3DDFA_V2's bfm_noneck_v3.pkl
DDFA_MODELS = ("bfm-68-landmarks", "bfm-3ddfa", "bfm-noneck-3ddfa")
_UM_PER_MM = 1000.0  # BFM micrometres per model millimetre


def pose_from_ddfa(pose_para: npt.ArrayLike, image_height: int) -> Pose:
    """Our weak-perspective pose from a ``Pose_Para`` (see the module Convention).

    Args:
        pose_para: ``[7]`` (or ``[1, 7]``) ``[pitch, yaw, roll, tx, ty, tz, scale]``.
        image_height: H, rows of the image the parameters refer to (450 in both datasets).

    Returns:
        The pose for a model in millimetres (pixels of that image, 0-based, y down).

    Raises:
        ShapeError: ``pose_para`` does not hold 7 values.

    Example:
        >>> p = pose_from_ddfa([0.0, 0.5, 0.0, 200.0, 250.0, 10.0, 0.0012], 450)
        >>> round(float(np.degrees(p.yaw)), 2), round(p.scale, 2), p.tx, p.ty
        (-28.65, 1.2, 199.0, 200.0)
    """
    pp = check_array(np.asarray(pose_para, np.float64).reshape(-1), "pose_para", (7,))
    r_d = rotation_matrix(*pp[:3]).T  # 3DDFA's (Rz Ry Rx)ᵀ
    pitch, yaw, roll = rotation_angles(r_d)
    return Pose(
        float(pp[6]) * _UM_PER_MM, pitch, yaw, roll, float(pp[3]) - 1.0, image_height - float(pp[4])
    )


def params_from_ddfa(
    model: MorphableModel,
    shape_para: npt.ArrayLike,
    exp_para: npt.ArrayLike,
    pose_para: npt.ArrayLike,
    image_height: int,
) -> FitParams:
    """FitParams from a 300W-LP / AFLW2000-3D .mat's ``Shape_Para``, ``Exp_Para``, ``Pose_Para``.

    Args:
        model: a 3DDFA BFM model (``model.name`` in :data:`DDFA_MODELS`, units mm).
        shape_para: ``[199]`` (or ``[199, 1]``) α; the leading ``model.n_id`` are used.
        exp_para: ``[29]`` β; the leading ``model.n_exp`` are used.
        pose_para: ``[7]`` ``[pitch, yaw, roll, tx, ty, tz, scale]``.
        image_height: H, rows of the image the parameters refer to (450 in both datasets).

    Returns:
        Coefficients and pose for ``model``; ``project(model.vertices(...), pose)`` lands on
        the image (see the module Convention and its measured accuracy).

    Raises:
        InputError: the model is not one of 3DDFA's BFM bases (fit the landmarks instead).
        ShapeError: ``pose_para`` does not hold 7 values.

    Example:
        >>> m = MorphableModel(
        ...     np.zeros((1, 3), np.float32), np.eye(3, 2, dtype=np.float32),
        ...     np.full(2, 0.5, np.float32), np.eye(3, 1, dtype=np.float32), np.ones(1, np.float32),
        ...     np.zeros((0, 3), np.int32), np.zeros(68, np.int32), name="bfm-68-landmarks")
        >>> p = params_from_ddfa(m, [2.0, 4.0, 6.0], [3.0], [0, 0, 0, 1, 2, 0, 1e-3], 10)
        >>> p.id_coef.tolist(), p.exp_coef.tolist(), p.pose.ty
        ([1.0, 2.0], [3.0], 8.0)
    """
    if model.name not in DDFA_MODELS or model.units != "mm":
        raise InputError(
            f"{model.name}: 300W-LP / AFLW2000-3D parameters need one of 3DDFA's BFM bases "
            f"({', '.join(DDFA_MODELS)}, in mm); fit the landmarks for other models"
        )
    alpha = np.asarray(shape_para, np.float64).reshape(-1)
    beta = np.asarray(exp_para, np.float64).reshape(-1)
    kid, kexp = min(model.n_id, alpha.size), min(model.n_exp, beta.size)
    id_coef = np.zeros(model.n_id, np.float32)
    exp_coef = np.zeros(model.n_exp, np.float32)
    id_coef[:kid] = alpha[:kid] * model.id_std[:kid]  # unit column x std = the dataset's column
    exp_coef[:kexp] = beta[:kexp] * model.exp_std[:kexp]
    return FitParams(id_coef, exp_coef, pose_from_ddfa(pose_para, image_height))
