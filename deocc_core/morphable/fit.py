"""Fit a morphable model to 68 landmarks: the paper's Eq. 2 by Levenberg-Marquardt.

Minimises, over identity α, expression β and the weak-perspective pose,

    Σ_i w_i ‖proj(mean + B_id α + B_exp β)_i − l_i‖² / d² + ρ1 ‖α/ξ_id‖² + ρ2 ‖β/ξ_exp‖²

where d is a face-size normaliser (1 % of sqrt(landmark box area)), so the priors weigh
the same at any image scale. Pose starts from a closed-form affine estimate; jaw
landmarks slide along the model's outline (``contour_right/left``) between rounds, so
turned faces fit their silhouette and not a fixed vertex: each jaw landmark takes the
contour vertex whose projection is nearest to it (eos's rule), on both sides. Measured on
the 13 shared AFLW2000-3D faces (Surrey model): mean NME 0.0225 sliding both sides, 0.0228
sliding only the side turned away, 0.0238 with fixed jaw vertices.

The whole fit (pose initialisation, every Levenberg-Marquardt round, contour sliding) is
one numba call, float64 throughout, on the landmark and contour rows of the bases only
(precomputed per model and mode count). The Gauss-Newton matrix is not built from the
``[2N, K + 6]`` Jacobian: its coefficient block is ``s² Σ_bb' P_bb' G_bb'`` with
``P = R₀ᵀR₀ + R₁ᵀR₁`` (the image-plane projector of the current rotation) and
``G_bb' = Σ_i w_i B_i[b]ᵀ B_i[b']`` (six K×K Gram matrices, fixed within a round), so an
iteration costs O(K²) instead of O(N K²); the coefficient/pose cross terms and the
gradient come from the 3×3 moments ``Σ_i w_i B_i[b]ᵀ ⊗ p_i``. Same normal equations as
the explicit Jacobian, to rounding.

Convention:
    Landmarks are ``[68, 2]`` pixels, (x, y), x right, y down, origin at the centre of the
    top-left pixel, iBUG-68 order, 0-based. The pose follows
    :mod:`deocc_core.morphable.params` (weak perspective, R = Rz(roll) Ry(yaw) Rx(pitch)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from deocc_core.check import check_array
from deocc_core.errors import InputError
from deocc_core.morphable.model import MorphableModel
from deocc_core.morphable.params import FitParams, Pose
from deocc_core.options import option

__all__ = ["FitConfig", "FitResult", "fit_landmarks", "fit_landmarks_batch", "landmark_nme"]

_DAMPING_TRIES = 12  # λ x 10 per rejected step before a round gives up (at a minimum)


@dataclass(frozen=True)
class FitConfig:
    """Landmark-fitting options.

    Attributes:
        rho_id: ρ1, weight of the identity prior ‖α/ξ_id‖².
        rho_exp: ρ2, weight of the expression prior ‖β/ξ_exp‖².
        max_id: fit at most this many leading identity modes (the rest stay 0).
        max_exp: at most this many expression modes.
        rounds: contour-sliding rounds (1 = fixed jaw vertices).
        max_iter: Levenberg-Marquardt iterations per round (each: one Jacobian, one solve).
        tol: stop a round when an accepted step lowers the cost by less than this fraction.
    """

    rho_id: float = option(2.0, "Weight of the identity prior (rho_1).", min=0.0)
    rho_exp: float = option(1.0, "Weight of the expression prior (rho_2).", min=0.0)
    max_id: int = option(40, "Fit at most this many leading identity modes.", min=0)
    max_exp: int = option(30, "Fit at most this many leading expression modes.", min=0)
    rounds: int = option(3, "Contour-sliding rounds (1: fixed jaw vertices).", min=1)
    max_iter: int = option(50, "Levenberg-Marquardt iterations per round.", min=1)
    tol: float = option(1e-6, "Stop a round when a step gains less than this fraction.", min=0.0)


@dataclass(frozen=True)
class FitResult:
    """Result of :func:`fit_landmarks`.

    Attributes:
        params: coefficients (padded with zeros to the model's mode counts) and pose.
        projected: ``[68, 2]`` float32 fitted landmark positions, pixels.
        vertex_ids: ``[68]`` int32 model vertices used (jaw ones slid along the contour).
        error_px: weighted mean landmark error, pixels.
        residual_px: ``[68]`` float32 per-landmark reprojection error, pixels (also where w = 0).
        nme: ``error_px`` / sqrt(landmark box area) of the targets.
        iterations: total LM iterations over all rounds.
        converged: the last round stopped on its tolerance, not on ``max_iter``.
    """

    params: FitParams
    projected: npt.NDArray[np.float32]
    vertex_ids: npt.NDArray[np.int32]
    error_px: float
    residual_px: npt.NDArray[np.float32]
    nme: float
    iterations: int
    converged: bool


def landmark_nme(
    pred: npt.NDArray[np.floating],
    target: npt.NDArray[np.floating],
    weights: npt.NDArray[np.floating] | None = None,
) -> float:
    """Mean point error normalised by sqrt(w·h) of the target box (the AFLW2000-3D NME).

    Args:
        pred: ``[N, 2]`` predicted points, pixels.
        target: ``[N, 2]`` true points, pixels.
        weights: ``[N]`` non-negative weights (0 = ignore the point); default ones.

    Returns:
        The weighted mean error over sqrt(width × height) of the box of the weighted targets.

    Example:
        >>> t = np.array([[0, 0], [10, 0], [0, 10], [10, 10.]])
        >>> landmark_nme(t + [1, 0], t)
        0.1
    """
    w = np.ones(len(target)) if weights is None else np.asarray(weights, np.float64)
    err = np.linalg.norm(np.asarray(pred, np.float64) - target, axis=1)
    size = np.sqrt(np.prod(np.ptp(np.asarray(target)[w > 0], axis=0)))
    return float((err * w).sum() / max(w.sum(), 1e-9) / max(size, 1e-9))


# ---------------------------------------------------------------- numba kernel (float64)

# reassociation lets the dot products and rank updates vectorise; no nnan/ninf: the NaN and
# positive-definiteness checks stay valid
_FAST = {"reassoc", "contract", "nsz", "arcp"}


@njit(cache=True)
def _rotation_rows(ux, uy, uz, c, s, deriv, out):  # pragma: no cover - compiled
    """``out [3] = u @ Rx(pitch)`` (or ``u @ dRx/dpitch`` with ``deriv``); c, s = cos, sin."""
    out[0] = 0.0 if deriv else ux
    if deriv:
        out[1] = -uy * s + uz * c
        out[2] = -uy * c - uz * s
    else:
        out[1] = uy * c + uz * s
        out[2] = -uy * s + uz * c


@njit(cache=True)
def _rotation(pitch, yaw, roll, r):  # pragma: no cover - compiled
    """Rows 0, 1 (x, y) of R = Rz Ry Rx and of dR/dpitch, dR/dyaw, dR/droll: ``r [4, 2, 3]``."""
    ca, sa, cb, sb, cc, sc = (
        np.cos(pitch),
        np.sin(pitch),
        np.cos(yaw),
        np.sin(yaw),
        np.cos(roll),
        np.sin(roll),
    )
    # rows of Rz Ry, of Rz dRy/dyaw and of dRz/droll Ry; each is then multiplied by Rx
    _rotation_rows(cc * cb, -sc, cc * sb, ca, sa, False, r[0, 0])
    _rotation_rows(sc * cb, cc, sc * sb, ca, sa, False, r[0, 1])
    _rotation_rows(cc * cb, -sc, cc * sb, ca, sa, True, r[1, 0])
    _rotation_rows(sc * cb, cc, sc * sb, ca, sa, True, r[1, 1])
    _rotation_rows(-cc * sb, 0.0, cc * cb, ca, sa, False, r[2, 0])
    _rotation_rows(-sc * sb, 0.0, sc * cb, ca, sa, False, r[2, 1])
    _rotation_rows(-sc * cb, -cc, -sc * sb, ca, sa, False, r[3, 0])
    _rotation_rows(cc * cb, -sc, cc * sb, ca, sa, False, r[3, 1])


@njit(cache=True)
def _initial_pose(mean, target, w, x):  # pragma: no cover - compiled
    """Closed-form weak-perspective pose (as ``camera.estimate_pose``) into ``x[K:]``."""
    n, k = mean.shape[0], x.size - 6
    a = np.zeros((n, 4))
    b = np.zeros((n, 2))
    for i in range(n):
        sw = np.sqrt(w[i])
        for j in range(3):
            a[i, j] = mean[i, j] * sw
        a[i, 3] = sw
        b[i, 0] = target[i, 0] * sw
        b[i, 1] = -target[i, 1] * sw  # y down → y up
    p = np.linalg.lstsq(a, b)[0].T.copy()  # [2, 4] affine camera
    u, sv, vt = np.linalg.svd(p[:, :3].copy(), full_matrices=False)
    r12 = u @ vt  # nearest matrix with orthonormal rows; their cross product is row 2
    r20 = r12[0, 1] * r12[1, 2] - r12[0, 2] * r12[1, 1]
    r21 = r12[0, 2] * r12[1, 0] - r12[0, 0] * r12[1, 2]
    r22 = r12[0, 0] * r12[1, 1] - r12[0, 1] * r12[1, 0]
    x[k] = 0.5 * (sv[0] + sv[1])
    x[k + 1] = np.arctan2(r21, r22)  # as camera.rotation_angles
    x[k + 2] = -np.arcsin(min(max(r20, -1.0), 1.0))
    x[k + 3] = np.arctan2(r12[1, 0], r12[0, 0])
    x[k + 4] = p[0, 3]
    x[k + 5] = -p[1, 3]


@njit(cache=True, fastmath=_FAST)
def _gram_add(bi, wt, gram):  # pragma: no cover - compiled
    """``gram += wt *`` the Gram combinations of one landmark's basis rows ``bi [3, K]``.

    gram [6, K, K], upper triangle only: [0..2] = B[b]ᵀB[b] for b = 0, 1, 2; [3..5] = the
    symmetrised cross terms B[b]ᵀB[b'] + B[b']ᵀB[b] for (b, b') = (0, 1), (0, 2), (1, 2).
    """
    k = bi.shape[1]
    for c1 in range(k):
        x0, x1, x2 = wt * bi[0, c1], wt * bi[1, c1], wt * bi[2, c1]
        for c2 in range(c1, k):
            y0, y1, y2 = bi[0, c2], bi[1, c2], bi[2, c2]
            gram[0, c1, c2] += x0 * y0
            gram[1, c1, c2] += x1 * y1
            gram[2, c1, c2] += x2 * y2
            gram[3, c1, c2] += x0 * y1 + x1 * y0
            gram[4, c1, c2] += x0 * y2 + x2 * y0
            gram[5, c1, c2] += x1 * y2 + x2 * y1


@njit(cache=True)
def _unit_gram(basis, rows, gram):  # pragma: no cover - compiled
    """Gram combinations of the landmark rows with unit weights (cached per model)."""
    gram[:] = 0.0
    for i in range(rows.size):
        _gram_add(basis[rows[i]], 1.0, gram)


@njit(cache=True, fastmath=_FAST)
def _moments(lm_basis, target, w, hy):  # pragma: no cover - compiled
    """Per-round moments ``hy [3, 3, K]``: ``hy[b, j] = Σ_i w_i [1, x_i, y_i]_j B_i[b]``."""
    hy[:] = 0.0
    for i in range(lm_basis.shape[0]):
        f0, f1, f2 = w[i], w[i] * target[i, 0], w[i] * target[i, 1]
        for b in range(3):
            for c in range(lm_basis.shape[2]):
                v = lm_basis[i, b, c]
                hy[b, 0, c] += f0 * v
                hy[b, 1, c] += f1 * v
                hy[b, 2, c] += f2 * v


@njit(cache=True, fastmath=_FAST)
def _shape(lm_mean, lm_basis, x, pts):  # pragma: no cover - compiled
    """Model-space landmark positions ``pts [N, 3]`` for the coefficients ``x[:K]``."""
    for i in range(lm_mean.shape[0]):
        for b in range(3):
            acc = 0.0
            for c in range(lm_basis.shape[2]):
                acc += lm_basis[i, b, c] * x[c]
            pts[i, b] = lm_mean[i, b] + acc


@njit(cache=True, fastmath=_FAST)
def _cost(pts, target, w, prior, x, r):  # pragma: no cover - compiled
    """Eq. 2 at x for the model points ``pts`` and the rotation rows ``r`` of :func:`_rotation`."""
    k = prior.size
    s, tx, ty = x[k], x[k + 4], x[k + 5]
    cost = 0.0
    for i in range(pts.shape[0]):
        q0 = r[0, 0, 0] * pts[i, 0] + r[0, 0, 1] * pts[i, 1] + r[0, 0, 2] * pts[i, 2]
        q1 = r[0, 1, 0] * pts[i, 0] + r[0, 1, 1] * pts[i, 1] + r[0, 1, 2] * pts[i, 2]
        ex = s * q0 + tx - target[i, 0]
        ey = -s * q1 + ty - target[i, 1]
        cost += w[i] * (ex * ex + ey * ey)
    for c in range(k):
        cost += (prior[c] * x[c]) ** 2
    return cost


@njit(cache=True, fastmath=_FAST)
def _pose_block(pts, target, w, x, r, jtj, grad):  # pragma: no cover - compiled
    """Pose rows of JᵀJ (upper) and of the gradient, summed over the landmarks.

    Row (i, a) of the Jacobian on the pose is ``√w_i [σ_a q, σ_a s (dR_m)_a p_i, δ_a0, δ_a1]``
    with ``q = R_a p_i`` and σ = +1 for x, -1 for y (image y points down); the residual is
    ``√w_i (σ_a s q + t_a - l_ia)``.
    """
    k = x.size - 6
    s = x[k]
    jtj[k:, k:] = 0.0
    grad[k:] = 0.0
    jp = np.empty(6)
    for i in range(pts.shape[0]):
        if w[i] == 0.0:
            continue
        sw = np.sqrt(w[i])
        for a in range(2):
            sg = 1.0 if a == 0 else -1.0
            q = r[0, a, 0] * pts[i, 0] + r[0, a, 1] * pts[i, 1] + r[0, a, 2] * pts[i, 2]
            res = sw * (sg * s * q + x[k + 4 + a] - target[i, a])
            jp[0] = sw * sg * q
            for m in range(1, 4):
                dq = r[m, a, 0] * pts[i, 0] + r[m, a, 1] * pts[i, 1] + r[m, a, 2] * pts[i, 2]
                jp[m] = sw * sg * s * dq
            jp[4] = sw if a == 0 else 0.0
            jp[5] = sw if a == 1 else 0.0
            for j1 in range(6):
                for j2 in range(j1, 6):
                    jtj[k + j1, k + j2] += jp[j1] * jp[j2]
                grad[k + j1] += jp[j1] * res


@njit(cache=True, fastmath=_FAST)
def _coef_block(lm_basis, pts, w, prior, gram, hy, x, r, v, comb, jtj, grad):  # pragma: no cover
    """Coefficient rows of JᵀJ (upper) and of the gradient.

    On the coefficients, row (i, a) of the Jacobian is ``σ_a s √w_i R_a B_i``, so the block
    is ``s² Σ_bb' P_bb' G_bb'`` (P = R₀ᵀR₀ + R₁ᵀR₁, G from ``gram``) and the cross terms and
    the gradient are 3 x 3 combinations of ``v[b, b'] = Σ_i w_i p_i[b'] B_i[b]`` and ``hy``.
    ``v [3, 3, K]`` and ``comb [7, 3, 4]`` are scratch.
    """
    k = prior.size
    _gram_block(gram, prior, x, r, jtj, grad)
    _point_moments(lm_basis, pts, w, v)
    _cross_weights(x, r, comb)
    s, r0, r1 = x[k], r[0, 0], r[0, 1]
    out = np.zeros((7, k))
    for j in range(7):
        for b in range(3):
            f0, f1, f2, f3 = comb[j, b, 0], comb[j, b, 1], comb[j, b, 2], comb[j, b, 3]
            for c in range(k):
                out[j, c] += f0 * v[b, 0, c] + f1 * v[b, 1, c] + f2 * v[b, 2, c] + f3 * hy[b, 0, c]
    for b in range(3):  # the targets' part of the gradient: -s Σ_a σ_a R_ab Σ_i w_i l_ia B_i[b]
        f1, f2 = -s * r0[b], s * r1[b]
        for c in range(k):
            out[6, c] += f1 * hy[b, 1, c] + f2 * hy[b, 2, c]
    for c in range(k):
        for j in range(6):
            jtj[c, k + j] = out[j, c]
        grad[c] += out[6, c]


@njit(cache=True, fastmath=_FAST)
def _gram_block(gram, prior, x, r, jtj, grad):  # pragma: no cover - compiled
    """``jtj[:K, :K] = s² Σ_bb' P_bb' G_bb' + diag(prior²)`` (upper), ``grad[:K] = prior² x``."""
    k = prior.size
    s, r0, r1 = x[k], r[0, 0], r[0, 1]
    pm = np.empty(6)
    for g in range(6):  # the pairs of _gram_add: (0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)
        b, bb = (g, g) if g < 3 else ((0, 1), (0, 2), (1, 2))[g - 3]
        pm[g] = s * s * (r0[b] * r0[bb] + r1[b] * r1[bb])
    for c1 in range(k):
        for c2 in range(c1, k):
            acc = 0.0
            for g in range(6):
                acc += pm[g] * gram[g, c1, c2]
            jtj[c1, c2] = acc
        jtj[c1, c1] += prior[c1] * prior[c1]
        grad[c1] = prior[c1] * prior[c1] * x[c1]


@njit(cache=True, fastmath=_FAST)
def _point_moments(lm_basis, pts, w, v):  # pragma: no cover - compiled
    """``v[b, b'] = Σ_i w_i p_i[b'] B_i[b]`` ([3, 3, K]) for the current model points."""
    v[:] = 0.0
    for i in range(pts.shape[0]):
        f0, f1, f2 = w[i] * pts[i, 0], w[i] * pts[i, 1], w[i] * pts[i, 2]
        for b in range(3):
            for c in range(lm_basis.shape[2]):
                e = lm_basis[i, b, c]
                v[b, 0, c] += f0 * e
                v[b, 1, c] += f1 * e
                v[b, 2, c] += f2 * e


@njit(cache=True, fastmath=_FAST)
def _cross_weights(x, r, comb):  # pragma: no cover - compiled
    """``comb[j, b]``: weights of (v[b, 0], v[b, 1], v[b, 2], hy[b, 0]) in output j.

    j = 0 scale, 1-3 the angles, 4 tx, 5 ty (the cross terms), 6 the gradient.
    """
    k = x.size - 6
    s, tx, ty = x[k], x[k + 4], x[k + 5]
    r0, r1 = r[0, 0], r[0, 1]
    comb[:] = 0.0
    for b in range(3):
        for bb in range(3):
            comb[0, b, bb] = s * (r0[b] * r0[bb] + r1[b] * r1[bb])
            for m in range(1, 4):
                comb[m, b, bb] = s * s * (r0[b] * r[m, 0, bb] + r1[b] * r[m, 1, bb])
            comb[6, b, bb] = s * comb[0, b, bb]
        comb[4, b, 3] = s * r0[b]
        comb[5, b, 3] = -s * r1[b]
        comb[6, b, 3] = s * (tx * r0[b] - ty * r1[b])


@njit(cache=True, fastmath=_FAST)
def _damped_solve(jtj, grad, lam, chol, step):  # pragma: no cover - compiled
    """Solve ``(JᵀJ + λ diag(JᵀJ)) step = -grad`` by Cholesky; False if not positive definite.

    ``jtj`` holds the upper triangle; ``chol [P, P]`` receives the lower factor L. (Faster here
    than LAPACK's potrf/gesv at P ~ 50, and than an outer-product Cholesky.)
    """
    p = grad.size
    for j in range(p):
        d = jtj[j, j] + lam * (jtj[j, j] + 1e-9)
        for t in range(j):
            d -= chol[j, t] * chol[j, t]
        if not d > 0.0:
            return False
        d = np.sqrt(d)
        chol[j, j] = d
        for i in range(j + 1, p):
            e = jtj[j, i]  # the upper triangle holds (j, i), i > j
            for t in range(j):
                e -= chol[i, t] * chol[j, t]
            chol[i, j] = e / d
    for i in range(p):  # L y = -grad
        e = -grad[i]
        for t in range(i):
            e -= chol[i, t] * step[t]
        step[i] = e / chol[i, i]
    for i in range(p - 1, -1, -1):  # Lᵀ step = y
        e = step[i]
        for t in range(i + 1, p):
            e -= chol[t, i] * step[t]
        step[i] = e / chol[i, i]
    return True


@njit(cache=True)
def _lm_round(lm_mean, lm_basis, target, w, prior, gram, hy, x, max_iter, tol):  # pragma: no cover
    """One Levenberg-Marquardt round (Marquardt diagonal damping) on fixed correspondences.

    Returns:
        (iterations, converged); ``x`` is updated in place.
    """
    k = prior.size
    p = k + 6
    pts, trial_pts = np.empty(lm_mean.shape), np.empty(lm_mean.shape)
    r, trial_r = np.empty((4, 2, 3)), np.empty((4, 2, 3))
    jtj, chol = np.zeros((p, p)), np.zeros((p, p))
    grad, step, xn = np.empty(p), np.empty(p), np.empty(p)
    v, comb = np.empty((3, 3, k)), np.empty((7, 3, 4))
    _shape(lm_mean, lm_basis, x, pts)
    _rotation(x[k + 1], x[k + 2], x[k + 3], r)
    cost = _cost(pts, target, w, prior, x, r)
    lam = 1e-3
    it = 0
    converged = False
    while it < max_iter and not converged:
        it += 1
        _coef_block(lm_basis, pts, w, prior, gram, hy, x, r, v, comb, jtj, grad)
        _pose_block(pts, target, w, x, r, jtj, grad)
        improved = False
        for _ in range(_DAMPING_TRIES):
            if _damped_solve(jtj, grad, lam, chol, step):
                for j in range(p):
                    xn[j] = x[j] + step[j]
                _shape(lm_mean, lm_basis, xn, trial_pts)
                _rotation(xn[k + 1], xn[k + 2], xn[k + 3], trial_r)
                cn = _cost(trial_pts, target, w, prior, xn, trial_r)
                if cn < cost:
                    rel = (cost - cn) / max(cost, 1e-30)
                    x[:] = xn
                    pts, trial_pts = trial_pts, pts
                    r, trial_r = trial_r, r
                    cost = cn
                    lam = max(lam * 0.3, 1e-9)
                    improved = True
                    converged = rel < tol or np.abs(step).max() < 1e-9
                    break
            lam *= 10.0
        if not improved:
            return it, True  # no descent direction left: at a minimum to working precision
    return it, converged


@njit(cache=True)
def _slide(mean, basis, x, target, jaw, contour, rows):  # pragma: no cover - compiled
    """Move each jaw landmark (ids ``jaw``) to the contour row whose projection is nearest."""
    k = x.size - 6
    r = np.empty((4, 2, 3))
    _rotation(x[k + 1], x[k + 2], x[k + 3], r)
    s, tx, ty = x[k], x[k + 4], x[k + 5]
    px, py = np.empty(contour.size), np.empty(contour.size)
    vert = np.empty(3)
    for j in range(contour.size):
        for b in range(3):
            acc = mean[contour[j], b]
            for c in range(k):
                acc += basis[contour[j], b, c] * x[c]
            vert[b] = acc
        px[j] = s * (r[0, 0, 0] * vert[0] + r[0, 0, 1] * vert[1] + r[0, 0, 2] * vert[2]) + tx
        py[j] = -s * (r[0, 1, 0] * vert[0] + r[0, 1, 1] * vert[1] + r[0, 1, 2] * vert[2]) + ty
    for li in jaw:
        best, best_d = 0, np.inf
        for j in range(contour.size):
            d = (px[j] - target[li, 0]) ** 2 + (py[j] - target[li, 1]) ** 2
            if d < best_d:
                best, best_d = j, d
        rows[li] = contour[best]


@njit(cache=True)
def _fit_kernel(
    mean, basis, rows, target, w, prior, contours, unit_gram, rounds, max_iter, tol, x, pred
):  # pragma: no cover - compiled
    """The whole fit: initial pose, LM rounds, contour sliding between them.

    Args (float64 / int64, C-contiguous): mean [C, 3] and basis [C, 3, K] (subset rows),
    rows [68] landmark → subset row (updated in place), target [68, 2] (normalised units),
    w [68], prior [K], contours [2, kc] subset rows of the right / left contour (kc = 0: no
    sliding), unit_gram [6, K, K] (:func:`_unit_gram` of the initial rows); outputs x [K + 6]
    and pred [68, 2], the fitted landmark positions (normalised units).

    Returns:
        (iterations, converged).
    """
    n, k = rows.size, prior.size
    lm_mean, lm_basis = np.empty((n, 3)), np.empty((n, 3, k))
    hy = np.empty((3, 3, k))
    gram = unit_gram.copy()
    for i in range(n):
        lm_mean[i] = mean[rows[i]]
        lm_basis[i] = basis[rows[i]]
        if w[i] != 1.0:
            _gram_add(lm_basis[i], w[i] - 1.0, gram)
    x[:] = 0.0
    _initial_pose(lm_mean, target, w, x)
    iterations, converged = 0, False
    jaws = (np.arange(0, 8), np.arange(16, 8, -1))  # both listed ear → chin, as the contours
    before = rows.copy()
    for rnd in range(max(rounds, 1)):
        _moments(lm_basis, target, w, hy)
        it, converged = _lm_round(lm_mean, lm_basis, target, w, prior, gram, hy, x, max_iter, tol)
        iterations += it
        if contours.shape[1] < 8 or rnd >= rounds - 1:
            break
        before[:] = rows
        _slide(mean, basis, x, target, jaws[0], contours[0], rows)
        _slide(mean, basis, x, target, jaws[1], contours[1], rows)
        moved = False
        for i in range(n):
            if rows[i] != before[i]:  # swap this landmark's Gram contribution
                moved = True
                _gram_add(lm_basis[i], -w[i], gram)
                lm_mean[i] = mean[rows[i]]
                lm_basis[i] = basis[rows[i]]
                _gram_add(lm_basis[i], w[i], gram)
        if not moved:
            break  # correspondences settled: another round would re-solve the same problem
    pts = np.empty((n, 3))
    r = np.empty((4, 2, 3))
    _shape(lm_mean, lm_basis, x, pts)
    _rotation(x[k + 1], x[k + 2], x[k + 3], r)
    for i in range(n):
        q0 = r[0, 0, 0] * pts[i, 0] + r[0, 0, 1] * pts[i, 1] + r[0, 0, 2] * pts[i, 2]
        q1 = r[0, 1, 0] * pts[i, 0] + r[0, 1, 1] * pts[i, 1] + r[0, 1, 2] * pts[i, 2]
        pred[i, 0] = x[k] * q0 + x[k + 4]
        pred[i, 1] = -x[k] * q1 + x[k + 5]
    return iterations, converged


# ---------------------------------------------------------------- Python wrappers


@dataclass(frozen=True)
class _FitData:
    """Per (model, mode counts, priors) arrays of the fit, cached on the model."""

    vertex_ids: npt.NDArray[np.int64]  # [C] subset vertices (landmarks + contours)
    mean: npt.NDArray[np.float64]  # [C, 3]
    basis: npt.NDArray[np.float64]  # [C, 3, K] = [id :kid | exp :kexp]
    rows: npt.NDArray[np.int64]  # [68] subset row of each landmark vertex
    contours: npt.NDArray[np.int64]  # [2, kc] subset rows of contour_right / contour_left
    no_contours: npt.NDArray[np.int64]  # [2, 0]: fixed jaw vertices
    prior: npt.NDArray[np.float64]  # [K] sqrt(ρ) / std
    unit_gram: npt.NDArray[np.float64]  # [6, K, K] Gram combinations of `rows`, unit weights


def _fit_data(model: MorphableModel, kid: int, kexp: int, rho_id: float, rho_exp: float):
    key = (kid, kexp, float(rho_id), float(rho_exp))
    cache = model.__dict__.setdefault("_fit_data", {})  # frozen dataclass: as cached_property
    if key in cache:
        return cache[key]
    cand = np.unique(
        np.concatenate([model.landmarks68, model.contour_right, model.contour_left]).astype(
            np.int64
        )
    )
    mean, basis = model.vertex_basis(cand)
    basis = np.concatenate([basis[:, :, :kid], basis[:, :, model.n_id : model.n_id + kexp]], 2)
    row_of = np.full(model.n_vertices, -1, np.int64)
    row_of[cand] = np.arange(cand.size)
    slide = model.contour_right.size >= 8 and model.contour_left.size >= 8
    contours = (
        _pad_contours(row_of[model.contour_right], row_of[model.contour_left])
        if slide
        else np.zeros((2, 0), np.int64)
    )
    prior = np.concatenate(
        [
            np.sqrt(rho_id) / model.id_std[:kid].astype(np.float64),
            np.sqrt(rho_exp) / np.maximum(model.exp_std[:kexp].astype(np.float64), 1e-9),
        ]
    )
    basis = np.ascontiguousarray(basis, np.float64)
    rows = row_of[model.landmarks68]
    gram = np.empty((6, basis.shape[2], basis.shape[2]))
    _unit_gram(basis, rows, gram)
    data = _FitData(
        cand,
        np.ascontiguousarray(mean, np.float64),
        basis,
        rows,
        np.ascontiguousarray(contours),
        np.zeros((2, 0), np.int64),
        prior,
        gram,
    )
    cache[key] = data
    return data


def _pad_contours(right: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Stack two contours of different lengths (the shorter repeats its last vertex)."""
    size = max(right.size, left.size)
    return np.stack([np.concatenate([c, np.full(size - c.size, c[-1])]) for c in (right, left)])


def fit_landmarks(
    model: MorphableModel,
    landmarks: npt.NDArray[np.floating],
    weights: npt.NDArray[np.floating] | None = None,
    config: FitConfig = FitConfig(),  # noqa: B008 - frozen dataclass: an immutable default
) -> FitResult:
    """Fit identity, expression and pose to 68 2D landmarks.

    Args:
        model: the morphable model.
        landmarks: ``[68, 2]`` pixels (x right, y down), iBUG order.
        weights: ``[68]`` per-landmark weights; 0 for missing / occluded points.
        config: priors, mode counts, rounds.

    Returns:
        :class:`FitResult`.

    Raises:
        ShapeError: landmarks not ``[68, 2]`` or weights not ``[68]``.
        InputError: fewer than 6 usable (finite, positive-weight) landmarks.

    Example:
        >>> from deocc_core.morphable.camera import project
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> truth = Pose(0.8, 0.1, 0.3, -0.05, 128, 128)
        >>> lm = project(m.vertices()[m.landmarks68], truth)[:, :2]
        >>> r = fit_landmarks(m, lm)
        >>> r.error_px < 1.0, bool(abs(np.degrees(r.params.pose.yaw) - np.degrees(0.3)) < 3)
        (True, True)
    """
    target = check_array(np.asarray(landmarks), "landmarks", (68, 2)).astype(np.float64)
    if weights is None:
        w = np.ones(68)
    else:
        w = check_array(np.asarray(weights), "weights", (68,)).astype(np.float64)
        w = np.clip(np.nan_to_num(w), 0.0, None)
    finite = np.isfinite(target).all(1)
    if not finite.all():
        w[~finite] = 0.0
        target = np.nan_to_num(target)
    used = w > 0
    if used.sum() < 6:
        raise InputError(f"only {used.sum()} usable landmarks; need at least 6 to fit a pose")
    box = target[used]
    size = float(np.sqrt(np.prod(box.max(0) - box.min(0))))
    # residuals in % of face size: priors weigh the same at any image scale
    norm = max(size, 1e-6) / 100.0
    kid, kexp = min(model.n_id, config.max_id), min(model.n_exp, config.max_exp)
    data = _fit_data(model, kid, kexp, config.rho_id, config.rho_exp)
    rows = data.rows.copy()
    x = np.empty(kid + kexp + 6)
    pred = np.empty((68, 2))
    iterations, converged = _fit_kernel(
        data.mean,
        data.basis,
        rows,
        target / norm,
        w,
        data.prior,
        data.contours if config.rounds > 1 else data.no_contours,
        data.unit_gram,
        int(config.rounds),
        int(config.max_iter),
        float(config.tol),
        x,
        pred,
    )
    pred *= norm
    x[[kid + kexp, -2, -1]] *= norm  # scale, tx, ty back to pixels
    id_coef = np.zeros(model.n_id, np.float32)
    exp_coef = np.zeros(model.n_exp, np.float32)
    id_coef[:kid], exp_coef[:kexp] = x[:kid], x[kid : kid + kexp]
    err = np.sqrt(((pred - target) ** 2).sum(1))
    error_px = float(err @ w / w.sum())
    return FitResult(
        FitParams(id_coef, exp_coef, Pose(*x[kid + kexp :].tolist())),
        pred.astype(np.float32),
        data.vertex_ids[rows].astype(np.int32),
        error_px,
        err.astype(np.float32),
        error_px / max(size, 1e-9),
        int(iterations),
        bool(converged),
    )


def fit_landmarks_batch(
    model: MorphableModel,
    landmarks: npt.NDArray[np.floating],
    weights: npt.NDArray[np.floating] | None = None,
    config: FitConfig = FitConfig(),  # noqa: B008 - frozen dataclass: an immutable default
) -> list[FitResult]:
    """:func:`fit_landmarks` over a batch (faces are independent; the model subset is cached once).

    Args:
        model: the morphable model.
        landmarks: ``[N, 68, 2]`` pixels.
        weights: ``[N, 68]`` or None.
        config: as for :func:`fit_landmarks`.

    Returns:
        N results, in order.

    Example:
        >>> from deocc_core.morphable.camera import project
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> lm = project(m.vertices()[m.landmarks68], Pose(0.8, 0.0, 0.2, 0.0, 128, 128))[:, :2]
        >>> [round(r.error_px, 1) < 1.0 for r in fit_landmarks_batch(m, np.stack([lm, lm + 5]))]
        [True, True]
    """
    lms = check_array(np.asarray(landmarks), "landmarks", (None, 68, 2))
    ws = (
        [None] * len(lms)
        if weights is None
        else check_array(np.asarray(weights), "weights", (len(lms), 68))
    )
    return [fit_landmarks(model, lm, w, config) for lm, w in zip(lms, ws, strict=True)]
