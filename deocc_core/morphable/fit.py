"""Fit a morphable model to 68 landmarks: the paper's Eq. 2 by Levenberg-Marquardt.

Minimises, over identity α, expression β and the weak-perspective pose,

    Σ_i w_i ‖proj(mean + B_id α + B_exp β)_i − l_i‖² / d² + ρ1 ‖α/ξ_id‖² + ρ2 ‖β/ξ_exp‖²

where d is a face-size normaliser (1 % of sqrt(landmark box area)), so the priors weigh
the same at any image scale. Pose starts from a closed-form affine estimate; jaw
landmarks slide along the model's outline (``contour_right/left``) between rounds, so
turned faces fit their silhouette and not a fixed vertex. MINPACK's LM (scipy) with an
analytic Jacobian.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares

from deocc_core.check import check_array
from deocc_core.errors import InputError
from deocc_core.morphable.camera import estimate_pose, project, rotation_matrix
from deocc_core.morphable.model import MorphableModel
from deocc_core.morphable.params import FitParams, Pose

__all__ = ["FitConfig", "FitResult", "fit_landmarks", "landmark_nme"]

_JAW_RIGHT, _JAW_LEFT = np.arange(0, 8), np.arange(9, 17)[::-1]  # both listed ear → chin


@dataclass(frozen=True)
class FitConfig:
    """Landmark-fitting options.

    Attributes:
        rho_id: ρ1, weight of the identity prior ‖α/ξ_id‖².
        rho_exp: ρ2, weight of the expression prior ‖β/ξ_exp‖².
        max_id: fit at most this many leading identity modes (the rest stay 0).
        max_exp: at most this many expression modes.
        rounds: contour-sliding rounds (1 = fixed jaw vertices).
        max_nfev: LM function evaluations per round.
    """

    rho_id: float = 2.0
    rho_exp: float = 1.0
    max_id: int = 40
    max_exp: int = 30
    rounds: int = 3
    max_nfev: int = 100


@dataclass(frozen=True)
class FitResult:
    """Result of :func:`fit_landmarks`.

    Attributes:
        params: coefficients (padded with zeros to the model's mode counts) and pose.
        projected: ``[68, 2]`` float32 fitted landmark positions, pixels.
        vertex_ids: ``[68]`` int32 model vertices used (jaw ones slid along the contour).
        error_px: weighted mean landmark error, pixels.
        nme: ``error_px`` / sqrt(landmark box area) of the targets.
        nfev: total residual evaluations.
    """

    params: FitParams
    projected: npt.NDArray[np.float32]
    vertex_ids: npt.NDArray[np.int32]
    error_px: float
    nme: float
    nfev: int


def landmark_nme(pred: npt.NDArray[np.floating], target: npt.NDArray[np.floating], weights=None) -> float:
    """Mean point error normalised by sqrt(w·h) of the target box (the AFLW2000-3D NME).

    Example:
        >>> t = np.array([[0, 0], [10, 0], [0, 10], [10, 10.]])
        >>> landmark_nme(t + [1, 0], t)
        0.1
    """
    w = np.ones(len(target)) if weights is None else np.asarray(weights, np.float64)
    err = np.linalg.norm(np.asarray(pred, np.float64) - target, axis=1)
    size = np.sqrt(np.prod(np.ptp(np.asarray(target)[w > 0], axis=0)))
    return float((err * w).sum() / max(w.sum(), 1e-9) / max(size, 1e-9))


def _rotation_derivatives(pitch: float, yaw: float, roll: float) -> tuple[np.ndarray, ...]:
    ca, sa, cb, sb, cc, sc = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
    rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    drx = np.array([[0, 0, 0], [0, -sa, -ca], [0, ca, -sa]])
    dry = np.array([[-sb, 0, cb], [0, 0, 0], [-cb, 0, -sb]])
    drz = np.array([[-sc, -cc, 0], [cc, -sc, 0], [0, 0, 0]])
    return rz @ ry @ rx, rz @ ry @ drx, rz @ dry @ rx, drz @ ry @ rx


def _solve(mean, basis, target, w, prior_scale, x0, max_nfev):
    """One LM run. mean [N,3], basis [N,3,K], target [N,2], w [N], prior_scale [K]."""
    k = basis.shape[2]
    sw = np.sqrt(w)

    def unpack(x):
        return x[:k], x[k:]

    def fun(x):
        c, pose = unpack(x)
        s, pitch, yaw, roll, tx, ty = pose
        p3 = mean + basis @ c
        q = p3 @ rotation_matrix(pitch, yaw, roll).T
        res = np.stack([s * q[:, 0] + tx - target[:, 0], -s * q[:, 1] + ty - target[:, 1]], 1) * sw[:, None]
        return np.concatenate([res.reshape(-1), c * prior_scale])

    def jac(x):
        c, pose = unpack(x)
        s, pitch, yaw, roll = pose[:4]
        r, dp, dy, dr = _rotation_derivatives(pitch, yaw, roll)
        p3 = mean + basis @ c
        n = len(p3)
        j = np.zeros((2 * n + k, k + 6))
        jr = j[: 2 * n].reshape(n, 2, k + 6)
        jr[:, 0, :k] = s * np.einsum("j,njk->nk", r[0], basis)
        jr[:, 1, :k] = -s * np.einsum("j,njk->nk", r[1], basis)
        q = p3 @ r.T
        jr[:, 0, k], jr[:, 1, k] = q[:, 0], -q[:, 1]
        for col, d in zip((k + 1, k + 2, k + 3), (dp, dy, dr)):
            dq = p3 @ d.T
            jr[:, 0, col], jr[:, 1, col] = s * dq[:, 0], -s * dq[:, 1]
        jr[:, 0, k + 4] = 1.0
        jr[:, 1, k + 5] = 1.0
        jr *= sw[:, None, None]
        j[2 * n :, :k] = np.diag(prior_scale)
        return j

    sol = least_squares(fun, x0, jac=jac, method="lm", max_nfev=max_nfev, x_scale="jac")
    return sol.x, sol.nfev


def fit_landmarks(
    model: MorphableModel,
    landmarks: npt.NDArray[np.floating],
    weights: npt.NDArray[np.floating] | None = None,
    config: FitConfig = FitConfig(),
) -> FitResult:
    """Fit identity, expression and pose to 68 2D landmarks.

    Args:
        model: the morphable model.
        landmarks: ``[68, 2]`` pixels (x right, y down), iBUG order.
        weights: ``[68]`` per-landmark weights; 0 for missing / occluded points.
        config: priors, mode counts, rounds.

    Returns:
        :class:`FitResult`.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> truth = Pose(0.8, 0.1, 0.3, -0.05, 128, 128)
        >>> lm = project(m.vertices()[m.landmarks68], truth)[:, :2]
        >>> r = fit_landmarks(m, lm)
        >>> r.error_px < 1.0, bool(abs(np.degrees(r.params.pose.yaw) - np.degrees(0.3)) < 3)
        (True, True)
    """
    target = check_array(np.asarray(landmarks), "landmarks", (68, 2)).astype(np.float64)
    w = np.ones(68) if weights is None else check_array(np.asarray(weights, np.float64), "weights", (68,))
    w = np.clip(np.nan_to_num(w), 0, None)
    w[~np.isfinite(target).all(1)] = 0
    target = np.nan_to_num(target)
    if (w > 0).sum() < 6:
        raise InputError(f"only {(w > 0).sum()} usable landmarks; need at least 6 to fit a pose")
    kid, kexp = min(model.n_id, config.max_id), min(model.n_exp, config.max_exp)
    norm = max(np.sqrt(np.prod(np.ptp(target[w > 0], axis=0))), 1e-6) / 100.0
    flat_mean = model.mean.astype(np.float64)
    id_b = model.id_basis[:, :kid].astype(np.float64).reshape(-1, 3, kid)
    exp_b = model.exp_basis[:, :kexp].astype(np.float64).reshape(-1, 3, kexp)
    prior = np.concatenate([np.sqrt(config.rho_id) / model.id_std[:kid], np.sqrt(config.rho_exp) / np.maximum(model.exp_std[:kexp], 1e-9)])

    ids = model.landmarks68.astype(np.int64).copy()
    coef = np.zeros(kid + kexp)
    pose = estimate_pose(flat_mean[ids], target, w)
    nfev = 0
    slide = config.rounds > 1 and model.contour_right.size >= 8 and model.contour_left.size >= 8
    for rnd in range(max(config.rounds, 1)):
        basis = np.concatenate([id_b[ids], exp_b[ids]], 2)
        x0 = np.concatenate([coef, pose.as_array().astype(np.float64)])
        scaled_target = target / norm  # residuals in % of face size
        x0[-2:] /= norm
        x0[kid + kexp] /= norm
        x, n = _solve(flat_mean[ids], basis, scaled_target, w, prior, x0, config.max_nfev)
        nfev += n
        coef = x[: kid + kexp]
        pa = x[kid + kexp :].copy()
        pa[0] *= norm
        pa[-2:] *= norm
        pose = Pose.from_array(pa)
        if not slide or rnd == config.rounds - 1:
            break
        verts = model.mean.astype(np.float64) + (
            np.concatenate([id_b, exp_b], 2).reshape(-1, kid + kexp) @ coef
        ).reshape(-1, 3)
        for jaw, contour in ((_JAW_RIGHT, model.contour_right), (_JAW_LEFT, model.contour_left)):
            proj = project(verts[contour], pose)[:, :2].astype(np.float64)
            d = np.linalg.norm(proj[None] - target[jaw][:, None], axis=2)
            ids[jaw] = contour[d.argmin(1)]
    id_coef = np.zeros(model.n_id, np.float32)
    exp_coef = np.zeros(model.n_exp, np.float32)
    id_coef[:kid], exp_coef[:kexp] = coef[:kid], coef[kid:]
    params = FitParams(id_coef, exp_coef, pose)
    pred = project(model.vertices(id_coef, exp_coef)[ids], pose)[:, :2]
    err = np.linalg.norm(pred - target, axis=1)
    return FitResult(
        params, pred.astype(np.float32), ids.astype(np.int32), float((err * w).sum() / w.sum()),
        landmark_nme(pred, target, w), int(nfev),
    )
