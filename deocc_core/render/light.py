"""Estimate a face's light (second-order SH, 9x3) and skin colour from a photo, robustly.

The image model is Lambertian with the SH irradiance of :mod:`deocc_core.render.shading`::

    photo_c(p) ≈ albedo_c(p) · gain_c · (sh_basis(n(p)) @ sh[:, c])

for every face pixel ``p`` (or visible vertex) with camera-space unit normal ``n(p)`` and a
reference albedo (the model's albedo, or a per-vertex skin-colour field for shape-only
models). Per channel this is linear in ``L_c = gain_c · sh[:, c]``, so each step is a weighted
least-squares solve of at most 9 unknowns per channel, inside iteratively reweighted least
squares (IRLS) whose weights drop occluders (masks, sunglasses, cups, hands), hair,
background over the silhouette and highlights:

1. start: the skin's colour is found as the densest chromaticity of ``photo / albedo``
   (shading-free), samples weighted by a prior of where skin is usually visible (forehead,
   nasal bridge: :func:`deocc_core.render.skin.skin_field`), then the densest brightness
   at that chromaticity; the samples near both are the first inliers. This survives an
   occluder over half the face, where a median would not;
2. IRLS on the first-order model (4 terms per channel), then on the full second-order
   model (9 terms), Tukey's biweight on chromaticity and log-intensity residuals with
   scales re-estimated on the current inliers (``tukey_c`` = 3: strict while searching);
3. with an albedo basis: albedo coefficients under that light (ridge prior), then the light;
4. polish: two iterations with the looser ``tukey_c_polish`` = 4 re-admit skin the coarse
   light misfit.

The solves use at most ``max_samples`` samples spread evenly over the face; the returned
weights cover all of them. Measured on the 15 human-labelled shared faces (Surrey model,
256 px crops) with a mask, sunglasses, a hand, a second mask, a scarf or a cup pasted on
(90 pairs): skin colour ``gain`` moves by median 0.008, max 0.09 (per channel, gain ~1);
the irradiance over the face by median 5.3 % of its mean.

Decomposition: the solve gives ``L`` ``[9, 3]``; it is split as ``gain_c = E_c / mean(E)``
and ``sh[:, c] = L[:, c] / gain_c``, with ``E_c`` the mean irradiance ``sh_basis(n) @ L_c``
over the face's inlier samples: under ``sh`` the face's mean irradiance is grey (equal in
R, G, B) and carries the photo's brightness; ``gain`` (mean 1) carries the face's colour
relative to the reference albedo. The product ``gain_c · sh[:, c]`` (the
light as seen by the reference albedo) is what a render needs; a consumer that wants the
photo's colour cast in its light (e.g. to light an occluder) uses
:attr:`LightEstimate.coloured_sh`. One photo cannot tell skin tint from light tint, nor a
dark skin from a dim light: this split is a convention, not a measurement.

Convention:
    Colours are the image's encoded values scaled to [0, 1] (no gamma linearisation: the
    renderer writes shaded values straight to uint8, so estimating in the same space makes
    the render reproduce the photo). Normals are camera space: x right, y UP, z toward the
    viewer (the model-space normals rotated by the pose's R), unit length; the SH order is
    that of :func:`deocc_core.render.shading.sh_basis` (1, y, z, x, xy, yz, 3z²-1, xz, x²-y²).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numba
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.errors import InputError
from deocc_core.render.raster import Raster, interpolate
from deocc_core.render.shading import sh_basis

__all__ = [
    "LightConfig",
    "LightEstimate",
    "FaceSamples",
    "estimate_light",
    "face_samples",
    "estimate_face_light",
    "weighted_quantile",
]

_BAND1, _ALL = 4, 9
# medians of the chi(2) and half-normal laws (scipy.stats chi(2).median(), halfnorm.median())
_CHI2_MEDIAN, _HALFNORM_MEDIAN = 1.1774100, 0.6744898


@dataclass(frozen=True)
class LightConfig:
    """Options of :func:`estimate_light`.

    Attributes:
        iterations_band1: IRLS iterations of the first-order (4-term) model.
        iterations: IRLS iterations of the full second-order (9-term) model.
        tukey_c: Tukey biweight cut-off while searching, in robust residual stds (strict:
            occluders must not pull the light before it is right).
        tukey_c_polish: the cut-off of the last ``iterations_polish`` iterations (4.685:
            95 % efficiency on Gaussian noise; a sample further out gets weight 0).
        iterations_polish: final iterations with ``tukey_c_polish``.
        min_sigma_chroma: floor of the robust chromaticity scale (keeps the weights sane on
            a perfect synthetic fit). min_sigma_log: the same for log intensity.
        dark: intensity (R + G + B in [0, 3]) at which a pixel's chromaticity residual
            counts half (below, chromaticity is mostly noise).
        chroma_bin: histogram bin of the skin-chromaticity search, in (r, g) chromaticity.
        chroma_kernel: std of the Gaussian that smooths the chromaticity histogram (wide
            enough that the skin, spread by shading and texture, outweighs a uniform occluder).
        chroma_radius: chromaticity distance at which the start weight reaches 0.
        level_kernel: std of the smoothing of the log-brightness histogram.
        level_radius: log-brightness distance at which the start weight reaches 0 (0.6:
            the skin's own shading spans about a factor 2 either way).
        ridge_band1: ridge on the 3 linear coefficients, relative to their own curvature
            (see :func:`_solve_light`).
        ridge_band2: ridge on the 5 quadratic coefficients, relative to their curvature.
        saturated: samples with any channel at or above this (in [0, 1]) are ignored
            (clipped highlights carry no shading information).
        max_samples: the solve uses at most this many samples, evenly spread over the
            usable ones (a 256 px face has ~23k; the estimate barely changes, the time drops
            with the count); the returned weights cover every sample.
        min_samples: fewer usable samples than this raise :class:`InputError`.
        albedo_rounds: light / albedo-coefficient alternations when a basis is given.
        albedo_rho: weight of the albedo prior ``‖coef / std‖²``, relative to the total weight.
    """

    iterations_band1: int = 4
    iterations: int = 6
    tukey_c: float = 3.0
    tukey_c_polish: float = 4.0
    iterations_polish: int = 2
    min_sigma_chroma: float = 0.004
    min_sigma_log: float = 0.02
    dark: float = 0.15
    chroma_bin: float = 0.01
    chroma_kernel: float = 0.03
    chroma_radius: float = 0.05
    level_kernel: float = 0.1
    level_radius: float = 0.6
    ridge_band1: float = 0.01
    ridge_band2: float = 0.05
    saturated: float = 0.985
    min_samples: int = 50
    max_samples: int = 4000
    albedo_rounds: int = 1
    albedo_rho: float = 0.05


@dataclass(frozen=True)
class LightEstimate:
    """Light and skin colour of one face.

    Attributes:
        sh: ``[9, 3]`` float32 SH light (camera space, order of ``sh_basis``); its mean
            irradiance over the face is grey (the same in R, G, B).
        gain: ``[3]`` float32 per-channel skin colour relative to the reference albedo
            (mean over channels 1).
        albedo_coef: ``[K]`` float32 albedo coefficients when a basis was given, else None.
        weights: ``[N]`` float32 final weight of each sample in [0, 1] (prior x robust;
            0 = ignored or outlier).
        sigma: RMS per-channel residual of the inliers (weighted), colour units in [0, 1].
        inlier_fraction: share of the prior-weighted samples with a robust weight > 0.
        n_samples: samples with a prior weight > 0.
    """

    sh: npt.NDArray[np.float32]
    gain: npt.NDArray[np.float32]
    albedo_coef: npt.NDArray[np.float32] | None
    weights: npt.NDArray[np.float32]
    sigma: float
    inlier_fraction: float
    n_samples: int

    @property
    def coloured_sh(self) -> npt.NDArray[np.float32]:
        """``[9, 3]`` float32: ``sh`` x ``gain`` per channel, the light on the reference albedo."""
        return (self.sh * self.gain[None, :]).astype(np.float32)


@dataclass(frozen=True)
class FaceSamples:
    """Per-pixel samples of a rendered face, the input of :func:`estimate_light`.

    Attributes:
        colors: ``[N, 3]`` float32 photo colours in [0, 1].
        normals: ``[N, 3]`` float32 camera-space unit normals.
        albedo: ``[N, 3]`` float32 reference albedo in [0, 1].
        weights: ``[N]`` float32 prior weights in [0, 1].
        pixels: ``[N, 2]`` int32 (row, col) of each sample in the image.
        prior: ``[N]`` float32 likely-visible-skin preference, or None.
        albedo_basis: ``[N, 3, K]`` float32 albedo basis at the samples, or None.
        sh_basis: ``[N, 9]`` float64 :func:`~deocc_core.render.shading.sh_basis` of
            ``normals``, or None (then :func:`estimate_light` computes it); estimates from
            other colours of the same samples (a face's occluded copies) share it.
    """

    colors: npt.NDArray[np.float32]
    normals: npt.NDArray[np.float32]
    albedo: npt.NDArray[np.float32]
    weights: npt.NDArray[np.float32]
    pixels: npt.NDArray[np.int32]
    prior: npt.NDArray[np.float32] | None = None
    albedo_basis: npt.NDArray[np.float32] | None = None
    sh_basis: npt.NDArray[np.float64] | None = None


def weighted_quantile(
    values: npt.NDArray[np.floating], weights: npt.NDArray[np.floating], q: float = 0.5
) -> npt.NDArray[np.float64]:
    """Weighted ``q``-quantile of each column (the smallest value reaching ``q`` of the weight).

    Args:
        values: ``[N]`` or ``[N, C]``.
        weights: ``[N]`` non-negative, not all zero.
        q: quantile in [0, 1] (0.5: the weighted median).

    Returns:
        ``[]`` or ``[C]`` float64.

    Example:
        >>> float(weighted_quantile(np.array([1.0, 2.0, 10.0]), np.array([1.0, 1.0, 1.0])))
        2.0
        >>> weighted_quantile(np.array([[1.0], [5.0]]), np.array([1.0, 3.0])).tolist()
        [5.0]
    """
    v = np.asarray(values, np.float64)
    flat = v.ndim == 1
    v = v[:, None] if flat else v
    w = np.asarray(weights, np.float64)
    order = np.argsort(v, axis=0, kind="stable")
    cw = np.cumsum(w[order], axis=0)
    idx = np.minimum((cw < q * cw[-1:]).sum(0), len(v) - 1)
    out = np.take_along_axis(v, order, 0)[idx, np.arange(v.shape[1])]
    return out[0] if flat else out


def _tukey(r: np.ndarray, c: float) -> np.ndarray:
    u = np.clip(r / c, 0.0, 1.0)
    return (1.0 - u * u) ** 2


_IU, _JU = np.triu_indices(_ALL)  # the 45 distinct entries of a 9 x 9 normal matrix


def _basis_products(basis: np.ndarray) -> np.ndarray:
    """``[N, 45]`` products ``b_i b_j`` (i <= j) of the SH basis: fixed over the IRLS."""
    return _products_kernel(np.ascontiguousarray(basis, np.float64))


@numba.njit(cache=True, nogil=True)
def _products_kernel(basis):  # pragma: no cover - numba
    n, k = basis.shape
    out = np.empty((n, k * (k + 1) // 2))
    for s in range(n):
        m = 0
        for i in range(k):
            for j in range(i, k):
                out[s, m] = basis[s, i] * basis[s, j]
                m += 1
    return out


@numba.njit(cache=True, nogil=True, fastmath=True)
def _normal_kernel(prods, basis, a, y, w):  # pragma: no cover - numba
    """``(upper [45, 3], rhs [9, 3])``: sums of ``w a_c² b_i b_j`` and ``w a_c y_c b_i``."""
    n, m = prods.shape
    upper = np.zeros((3, m))
    rhs = np.zeros((3, basis.shape[1]))
    for s in range(n):
        ws = w[s]
        if ws == 0.0:
            continue
        for c in range(3):
            wa = ws * a[s, c]
            wa2 = wa * a[s, c]
            way = wa * y[s, c]
            for j in range(m):
                upper[c, j] += wa2 * prods[s, j]
            for j in range(basis.shape[1]):
                rhs[c, j] += way * basis[s, j]
    return upper, rhs


@numba.njit(cache=True, nogil=True)
def _ridge_solve(upper, rhs, k, ridge1, ridge2):  # pragma: no cover - numba
    """``[9, 3]`` light from the channels' normal sums (:func:`_normal_kernel`), ``k`` terms.

    Per channel: the ``k x k`` normal matrix with the relative ridge (``ridge1`` on the
    linear terms, ``ridge2`` on the quadratic ones, times the diagonal) plus 1e-12, solved
    by Cholesky (it is symmetric positive definite).
    """
    out = np.zeros((_ALL, 3))
    lhs = np.empty((k, k))
    for c in range(3):
        m = 0
        for i in range(_ALL):
            for j in range(i, _ALL):
                if j < k:
                    lhs[i, j] = upper[c, m]
                    lhs[j, i] = upper[c, m]
                m += 1
        for i in range(k):
            lam = 0.0 if i == 0 else (ridge1 if i < _BAND1 else ridge2)
            lhs[i, i] += lam * lhs[i, i] + 1e-12
        out[:k, c] = _cholesky_solve(lhs, rhs[c, :k])
    return out


@numba.njit(cache=True, nogil=True)
def _cholesky_solve(lhs, b):  # pragma: no cover - numba
    """``x`` with ``lhs x = b`` for a small SPD ``lhs`` (overwritten by its Cholesky factor)."""
    k = b.shape[0]
    for j in range(k):
        d = lhs[j, j]
        for p in range(j):
            d -= lhs[j, p] * lhs[j, p]
        d = np.sqrt(max(d, 1e-300))
        lhs[j, j] = d
        for i in range(j + 1, k):
            v = lhs[i, j]
            for p in range(j):
                v -= lhs[i, p] * lhs[j, p]
            lhs[i, j] = v / d
    z = np.empty(k)
    for i in range(k):
        v = b[i]
        for p in range(i):
            v -= lhs[i, p] * z[p]
        z[i] = v / lhs[i, i]
    x = np.empty(k)
    for i in range(k - 1, -1, -1):
        v = z[i]
        for p in range(i + 1, k):
            v -= lhs[p, i] * x[p]
        x[i] = v / lhs[i, i]
    return x


def _solve_light(
    y: np.ndarray,
    a: np.ndarray,
    basis: np.ndarray,
    w: np.ndarray,
    k: int,
    cfg: LightConfig,
    products: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted ridge solve of ``y_c ≈ a_c · (basis[:, :k] @ L_c)`` per channel → ``[9, 3]``.

    The ridge is relative: coefficient j is damped by ``ridge * (X^T W X)_jj`` (scale-free,
    like Marquardt's damping), so it shrinks each term by about ``ridge`` where the data
    determine it and holds back the combinations they do not (on a face's front-facing
    normals the ``3z²-1`` term and the constant are nearly collinear).

    The normal matrices of the three channels are accumulated in one pass over the samples
    from the fixed basis products (:func:`_basis_products`, passed as ``products`` across
    iterations); the first-order model's is their leading block.
    """
    prods = _basis_products(basis) if products is None else products
    upper, rhs = _normal_kernel(
        prods,
        np.ascontiguousarray(basis, np.float64),
        np.ascontiguousarray(a, np.float64),
        np.ascontiguousarray(y, np.float64),
        np.ascontiguousarray(w, np.float64),
    )
    return _ridge_solve(upper, rhs, k, float(cfg.ridge_band1), float(cfg.ridge_band2))


@numba.njit(cache=True, nogil=True)
def _iterate_kernel(
    y, alb, basis, prods, w0, w, light, ks, c, dark, min_sc, min_si, r1, r2, chi2_med, half_med
):  # pragma: no cover - numba
    """IRLS iterations: per k in ``ks``, robust weights under ``light``, then a k-term solve."""
    for k in ks:
        pred = alb * (basis @ light)
        w, _, _, _ = _robust_kernel(y, pred, w0, w, c, dark, min_sc, min_si, chi2_med, half_med)
        upper, rhs = _normal_kernel(prods, basis, alb, y, w)
        light = _ridge_solve(upper, rhs, k, r1, r2)
    return light, w


def _iterate(
    y: np.ndarray,
    alb: np.ndarray,
    basis: np.ndarray,
    prods: np.ndarray,
    w0: np.ndarray,
    w: np.ndarray,
    light: np.ndarray,
    ks: list[int],
    cut: LightConfig,
    cfg: LightConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """``len(ks)`` IRLS iterations (robust weights with ``cut.tukey_c``, then a ``k``-term solve).

    Returns:
        ``(light [9, 3], weights [N])`` after the last iteration.
    """
    if not ks:
        return light, w
    return _iterate_kernel(
        y,
        np.ascontiguousarray(alb, np.float64),
        basis,
        prods,
        w0,
        np.ascontiguousarray(w, np.float64),
        np.ascontiguousarray(light, np.float64),
        np.asarray(ks, np.int64),
        float(cut.tukey_c),
        float(cfg.dark),
        float(cfg.min_sigma_chroma),
        float(cfg.min_sigma_log),
        float(cfg.ridge_band1),
        float(cfg.ridge_band2),
        _CHI2_MEDIAN,
        _HALFNORM_MEDIAN,
    )


def _residuals(y: np.ndarray, pred: np.ndarray, cfg: LightConfig) -> tuple[np.ndarray, np.ndarray]:
    """Chromaticity and log-intensity residuals ``([N], [N])`` of samples vs a prediction."""
    ec, ei = np.empty(len(y)), np.empty(len(y))
    _residuals_kernel(np.ascontiguousarray(y), np.ascontiguousarray(pred), cfg.dark, ec, ei)
    return ec, ei


@numba.njit(cache=True, nogil=True)
def _residuals_kernel(y, pred, dark, ec, ei):  # pragma: no cover - numba
    """Fills ``ec`` (chromaticity residual, damped on dark samples) and ``ei`` (|log ratio|)."""
    for i in range(y.shape[0]):
        sy = y[i, 0] + y[i, 1] + y[i, 2]
        sp = max(pred[i, 0] + pred[i, 1] + pred[i, 2], 1e-3)
        syc = max(sy, 1e-3)
        d0 = y[i, 0] / syc - pred[i, 0] / sp
        d1 = y[i, 1] / syc - pred[i, 1] / sp
        ec[i] = np.sqrt(d0 * d0 + d1 * d1) * (sy / (sy + dark))  # chromaticity of dark: noise
        ei[i] = abs(np.log(syc / sp))


@numba.njit(cache=True, nogil=True)
def _robust_kernel(y, pred, w0, w_prev, c, dark, min_sc, min_si, chi2_med, half_med):
    """Numba body of :func:`_robust_weights` → (weights [N], sigma, chroma scale, log scale)."""
    n = y.shape[0]
    ec, ei = np.empty(n), np.empty(n)
    _residuals_kernel(y, pred, dark, ec, ei)
    # the inliers as a set (not by weight: the biweight's down-weighting would shrink the
    # scale), all usable samples before the first weights; the plain median over them
    inl = (w_prev > 0) & (w0 > 0)
    if not inl.any():
        inl = w0 > 0
    qc = np.median(ec[inl])
    qi = np.median(ei[inl])
    sc = max(qc / chi2_med, min_sc)
    si = max(qi / half_med, min_si)
    w = np.empty(n)
    num, den = 0.0, 0.0
    for i in range(n):
        uc = min(max(ec[i] / (c * sc), 0.0), 1.0)
        ui = min(max(ei[i] / (c * si), 0.0), 1.0)
        wc = (1.0 - uc * uc) ** 2
        wl = (1.0 - ui * ui) ** 2
        w[i] = w0[i] * wc * wl
        r0, r1, r2 = y[i, 0] - pred[i, 0], y[i, 1] - pred[i, 1], y[i, 2] - pred[i, 2]
        num += w[i] * (r0 * r0 + r1 * r1 + r2 * r2)
        den += w[i]
    sigma = np.sqrt(num / max(3.0 * den, 1e-12))
    return w, sigma, sc, si


def _robust_weights(
    y: np.ndarray, pred: np.ndarray, w0: np.ndarray, w_prev: np.ndarray, cfg: LightConfig
) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Robust weights ``[N]`` of the samples given the current prediction.

    A sample's residual is split into chromaticity (``(R, G) / (R + G + B)``, unaffected by
    how well the shading fits) and log intensity (where an imperfect fitted shape puts its
    shading error). Each gets Tukey's biweight with its own robust scale: the median of its
    residuals over the previous iteration's inliers ``w_prev`` (at first the
    skin-coloured samples of :func:`_skin_mode`) divided by the median of the residual's
    Gaussian law (chi(2) for chromaticity, half-normal for log intensity). Taking the scale
    from the inliers, not from all samples, keeps it right when occluders, hair and
    background outnumber the visible skin. Occluders differ from skin mostly in
    chromaticity (masks, scarves) or intensity (sunglasses, hair).

    One numba pass (:func:`_robust_kernel`; the medians by selection, not a sort).

    Returns:
        ``(weights [N], sigma, (chroma scale, log scale))``: sigma is the inliers' RGB
        residual RMS per channel.
    """
    w, sigma, sc, si = _robust_kernel(
        np.ascontiguousarray(y),
        np.ascontiguousarray(pred),
        np.ascontiguousarray(w0, np.float64),
        np.ascontiguousarray(w_prev, np.float64),
        float(cfg.tukey_c),
        float(cfg.dark),
        float(cfg.min_sigma_chroma),
        float(cfg.min_sigma_log),
        _CHI2_MEDIAN,
        _HALFNORM_MEDIAN,
    )
    return w, float(sigma), (float(sc), float(si))


def _skin_mode(
    ratio: np.ndarray, w0: np.ndarray, prior: np.ndarray, cfg: LightConfig
) -> np.ndarray:
    """Start weights ``[N]``: samples near the skin's colour (chromaticity, then brightness).

    ``ratio`` is photo / albedo ``[N, 3]`` (the irradiance times skin colour). Its
    chromaticity (r, g) = (R, G) / (R + G + B) does not depend on shading, so the visible
    skin forms one compact cluster whatever the light; occluders, hair and background form
    others (or spread out, like patterned fabric). The skin is taken as the densest
    chromaticity (peak of a smoothed histogram, samples weighted by ``w0 * prior``), then,
    among samples of that chromaticity, the densest log brightness (which separates a
    white mask or dark glasses from skin in a grey photo, where chromaticity cannot). This
    holds beyond half the face occluded, where a median fails, as long as no single other
    colour covers more of the (prior-weighted) face than the skin.
    """
    total = np.maximum(ratio.sum(1), 1e-6)
    chroma = ratio[:, :2] / total[:, None]
    wp = w0 * prior
    bins = int(round(1.0 / cfg.chroma_bin))
    hist, _, _ = np.histogram2d(
        chroma[:, 0], chroma[:, 1], bins=bins, range=[[0, 1], [0, 1]], weights=wp
    )
    hist = cv2.GaussianBlur(hist.astype(np.float32), (0, 0), cfg.chroma_kernel / cfg.chroma_bin)
    i, j = np.unravel_index(int(np.argmax(hist)), hist.shape)
    peak = (np.array([i, j]) + 0.5) * cfg.chroma_bin
    wc = _tukey(np.linalg.norm(chroma - peak, axis=1), cfg.chroma_radius)
    level = np.log(total)
    lo, hi = -6.0, 2.0  # log(R + G + B) of ratios in [~0.0025, 7.4]
    lbins = int(round((hi - lo) / cfg.chroma_bin))
    lhist, _ = np.histogram(np.clip(level, lo, hi), lbins, (lo, hi), weights=wp * wc)
    lhist = cv2.GaussianBlur(
        lhist.astype(np.float32)[None], (0, 0), cfg.level_kernel / cfg.chroma_bin
    )
    lpeak = lo + (int(np.argmax(lhist[0])) + 0.5) * cfg.chroma_bin
    return w0 * wc * _tukey(np.abs(level - lpeak), cfg.level_radius)


def _solve_albedo(
    y: np.ndarray,
    a0: np.ndarray,
    abasis: np.ndarray,
    astd: np.ndarray,
    irradiance: np.ndarray,
    w: np.ndarray,
    cfg: LightConfig,
) -> np.ndarray:
    """Ridge solve of ``y ≈ (a0 + abasis @ coef) · irradiance`` for albedo coefficients ``[K]``."""
    x = abasis * irradiance[:, :, None]  # [N, 3, K]
    r = y - a0 * irradiance  # [N, 3]
    xw = x * w[:, None, None]
    lhs = np.einsum("nck,ncj->kj", xw, x)
    rhs = np.einsum("nck,nc->k", xw, r)
    prior = cfg.albedo_rho * max(float(w.sum()), 1e-12) / np.maximum(astd, 1e-9) ** 2
    return np.linalg.solve(lhs + np.diag(prior), rhs)


def estimate_light(
    colors: npt.NDArray[np.floating],
    normals: npt.NDArray[np.floating],
    albedo: npt.NDArray[np.floating],
    weights: npt.NDArray[np.floating] | None = None,
    *,
    prior: npt.NDArray[np.floating] | None = None,
    albedo_basis: npt.NDArray[np.floating] | None = None,
    albedo_std: npt.NDArray[np.floating] | None = None,
    config: LightConfig | None = None,
    basis: npt.NDArray[np.float64] | None = None,
) -> LightEstimate:
    """Robust SH light + skin colour (and albedo coefficients) from face samples.

    Args:
        colors: ``[N, 3]`` photo colours in [0, 1] (pixels or visible vertices).
        normals: ``[N, 3]`` camera-space unit normals at the samples (see Convention).
        albedo: ``[N, 3]`` (or ``[3]``) reference albedo in [0, 1] at the samples.
        weights: ``[N]`` prior weights in [0, 1] (0 = not face / not trusted); default 1.
        prior: ``[N]`` in [0, 1], where visible skin is most likely (weights the search
            for the skin's colour at the start only; e.g. :class:`~deocc_core.render.skin.SkinField`
            ``prior``); default uniform.
        albedo_basis: ``[N, 3, K]`` albedo basis at the samples (the model's basis
            columns), to also fit albedo coefficients; needs ``albedo_std`` ``[K]``.
        albedo_std: ``[K]`` prior std of the albedo coefficients.
        config: iterations, robust cut-off, ridges; default :class:`LightConfig`.
        basis: ``[N, 9]`` float64 ``sh_basis(normals)`` when already computed
            (:attr:`FaceSamples.sh_basis`); default computed here.

    Returns:
        :class:`LightEstimate`; ``albedo · (1 + basis coef)``-style refinements are in
        ``albedo_coef`` when a basis was given.

    Raises:
        ShapeError: arrays of the wrong shape.
        InputError: fewer than ``config.min_samples`` usable samples.

    Example:
        >>> from deocc_core.render.shading import light_sh, sh_basis
        >>> rng = np.random.default_rng(0)
        >>> n = rng.normal(size=(2000, 3)); n[:, 2] = np.abs(n[:, 2])
        >>> n /= np.linalg.norm(n, axis=1, keepdims=True)
        >>> alb = np.array([0.8, 0.6, 0.5])
        >>> photo = alb * 0.9 * (sh_basis(n) @ light_sh([0.5, 0.5, 1], 0.5, 0.4))[:, None]
        >>> photo[:600] = [0.1, 0.3, 0.9]  # a blue occluder over 30 % of the samples
        >>> est = estimate_light(photo, n, alb)
        >>> np.round(est.gain, 2).tolist(), round(est.inlier_fraction, 1)
        ([1.0, 1.0, 1.0], 0.7)
    """
    config = LightConfig() if config is None else config
    y = check_array(np.asarray(colors), "colors", (None, 3)).astype(np.float64)
    n = check_array(np.asarray(normals), "normals", (len(y), 3))
    a = np.broadcast_to(np.asarray(albedo, np.float64), y.shape)
    w0 = (
        np.ones(len(y))
        if weights is None
        else check_array(np.asarray(weights), "weights", (len(y),)).astype(np.float64)
    )
    a = np.ascontiguousarray(a)
    w0 = _usable_kernel(y, a, np.ascontiguousarray(w0, np.float64), float(config.saturated))
    n_used = int(np.count_nonzero(w0))
    if n_used < config.min_samples:
        raise InputError(
            f"estimate_light: only {n_used} usable face samples (need {config.min_samples})"
        )
    abasis = astd = None
    if albedo_basis is not None:
        abasis = check_array(np.asarray(albedo_basis), "albedo_basis", (len(y), 3, None))
        abasis = abasis.astype(np.float64)
        astd = check_array(
            np.asarray(albedo_std if albedo_std is not None else np.ones(abasis.shape[2])),
            "albedo_std",
            (abasis.shape[2],),
        ).astype(np.float64)

    sel = np.flatnonzero(w0 > 0)
    if len(sel) > config.max_samples:  # an even spread over the face, deterministic
        sel = sel[np.linspace(0, len(sel) - 1, config.max_samples).round().astype(np.int64)]
    prior_sel = (
        None
        if prior is None
        else np.clip(check_array(np.asarray(prior), "prior", (len(y),)), 0.0, 1.0)[sel]
    )
    basis_all = (
        sh_basis(n).astype(np.float64)
        if basis is None
        else check_array(np.asarray(basis), "basis", (len(y), _ALL), np.float64)
    )
    light, coef, scales, polish = _irls(
        y[sel],
        a[sel],
        basis_all[sel],
        w0[sel],
        prior_sel,
        None if abasis is None else abasis[sel],
        astd,
        config,
    )
    # final weights of every sample under the final light and scales
    alb = a if coef is None else np.clip(a + abasis @ coef, 1e-3, 1.0)
    irradiance = basis_all @ light
    c = polish.tukey_c
    w, sigma, irr = _final_kernel(
        y, np.ascontiguousarray(alb), irradiance, w0, c * scales[0], c * scales[1], config.dark
    )
    # split: the mean irradiance over the face's inliers is grey in the light, the colour is
    # in the gain (the constant term alone trades off against 3z²-1 on frontal normals)
    gain = np.where(irr > 1e-6, irr / max(float(irr.mean()), 1e-6), 1.0)
    sh = light / gain[None, :]
    return LightEstimate(
        sh.astype(np.float32),
        gain.astype(np.float32),
        None if coef is None else coef.astype(np.float32),
        w.astype(np.float32),
        float(sigma),
        float(np.count_nonzero(w) / n_used),  # w > 0 only where w0 > 0
        n_used,
    )


@numba.njit(cache=True, nogil=True)
def _usable_kernel(y, a, w0, saturated):  # pragma: no cover - numba
    """Prior weights in [0, 1] (NaN: 0); 0 for non-finite, saturated or albedo-less samples."""
    out = np.zeros(y.shape[0])
    for i in range(y.shape[0]):
        ok = True
        for c in range(3):
            v = y[i, c]
            if not (np.isfinite(v) and v < saturated and a[i, c] > 1e-3):
                ok = False
        wi = w0[i]
        if ok and wi == wi:  # not NaN
            out[i] = min(max(wi, 0.0), 1.0)
    return out


@numba.njit(cache=True, nogil=True)
def _final_kernel(y, alb, irradiance, w0, cut_c, cut_i, dark):  # pragma: no cover - numba
    """Final weights of every sample, the inliers' residual RMS, their mean irradiance ``[3]``."""
    n = y.shape[0]
    pred = alb * irradiance
    ec, ei = np.empty(n), np.empty(n)
    _residuals_kernel(y, pred, dark, ec, ei)
    w = np.empty(n)
    num, den = 0.0, 0.0
    irr = np.zeros(3)
    for i in range(n):
        uc = min(max(ec[i] / cut_c, 0.0), 1.0)
        ui = min(max(ei[i] / cut_i, 0.0), 1.0)
        w[i] = w0[i] * (1.0 - uc * uc) ** 2 * (1.0 - ui * ui) ** 2
        r0, r1, r2 = y[i, 0] - pred[i, 0], y[i, 1] - pred[i, 1], y[i, 2] - pred[i, 2]
        num += w[i] * (r0 * r0 + r1 * r1 + r2 * r2)
        den += w[i]
        for c in range(3):
            irr[c] += w[i] * irradiance[i, c]
    return w, np.sqrt(num / max(3.0 * den, 1e-12)), irr / max(den, 1e-12)


def _irls(
    y: np.ndarray,
    a: np.ndarray,
    basis: np.ndarray,
    w0: np.ndarray,
    prior: np.ndarray | None,
    abasis: np.ndarray | None,
    astd: np.ndarray | None,
    config: LightConfig,
) -> tuple[np.ndarray, np.ndarray | None, tuple[float, float], LightConfig]:
    """The robust solve on (sub)samples → (light [9, 3], albedo coef | None, scales, polish cfg)."""
    # 1. start: the samples whose colour is the skin's (densest chromaticity, see _skin_mode)
    y, a, basis = (np.ascontiguousarray(v, np.float64) for v in (y, a, basis))
    w0 = np.ascontiguousarray(w0, np.float64)
    ratio = y / np.maximum(a, 1e-3)
    w = _skin_mode(ratio, w0, np.ones(len(y)) if prior is None else prior, config)
    prods = _basis_products(basis)
    # 2. first-order light on those, then IRLS: first order, then second order
    light = _solve_light(y, a, basis, w, _BAND1, config, prods)
    coef = None
    alb = a
    for rnd in range(config.albedo_rounds if abasis is not None else 1):
        stages = [_BAND1] * config.iterations_band1 if rnd == 0 else []
        ks = stages + [_ALL] * config.iterations
        light, w = _iterate(y, alb, basis, prods, w0, w, light, ks, config, config)
        if abasis is not None:  # 3. albedo coefficients under that light, then the light again
            w, _, _ = _robust_weights(y, alb * (basis @ light), w0, w, config)
            coef = _solve_albedo(y, a, abasis, astd, basis @ light, w, config)
            alb = np.clip(a + abasis @ coef, 1e-3, 1.0)
    # 4. polish: a few iterations with the looser cut-off re-admit skin whose shading the
    # coarse light misfit (shadowed sides), now that the occluders are far from the fit
    polish = replace(config, tukey_c=config.tukey_c_polish)
    ks = [_ALL] * config.iterations_polish
    light, w = _iterate(y, alb, basis, prods, w0, w, light, ks, polish, config)
    _, _, scales = _robust_weights(y, alb * (basis @ light), w0, w, polish)
    return light, coef, scales, polish


def face_samples(
    image: npt.NDArray[np.uint8],
    raster: Raster,
    normals: npt.NDArray[np.floating],
    albedo: npt.NDArray[np.floating],
    vertex_weights: npt.NDArray[np.floating] | None = None,
    *,
    vertex_prior: npt.NDArray[np.floating] | None = None,
    albedo_basis: npt.NDArray[np.floating] | None = None,
    erode_px: int = 2,
    grazing: float = 0.25,
) -> FaceSamples:
    """Gather per-pixel samples of the face region of a photo for :func:`estimate_light`.

    Every pixel the face covers (the mask M eroded by ``erode_px``, so the background just
    outside an imperfect silhouette stays out) gives one sample: the photo colour, the
    interpolated camera-space normal (renormalised), albedo, and a prior weight =
    interpolated ``vertex_weights`` x a ramp that fades normals seen edge-on (camera ``z``
    below ``grazing``: silhouette pixels mix face and background and are the least reliable).

    Args:
        image: ``[H, W, 3]`` uint8 RGB photo (the crop the raster was drawn for).
        raster: the face's :class:`~deocc_core.render.raster.Raster` at the fitted pose.
        normals: ``[V, 3]`` camera-space unit vertex normals (model normals @ R.T).
        albedo: ``[V, 3]`` reference albedo in [0, 1] (or ``[3]`` for every vertex).
        vertex_weights: ``[V]`` prior trust per vertex in [0, 1] (e.g. 1 on skin, 0 on eyes
            and brows); default 1.
        vertex_prior: ``[V]`` likely-visible-skin preference in [0, 1] (see
            :func:`estimate_light` ``prior``); default None (uniform).
        albedo_basis: ``[3V, K]`` model albedo basis (xyz-interleaved rows) to sample too.
        erode_px: erosion of M, pixels.
        grazing: camera ``z`` of the normal below which the weight ramps to 0.

    Returns:
        :class:`FaceSamples` (N = covered pixels after erosion, row-major order).

    Raises:
        ShapeError: arrays of the wrong shape.

    Example:
        >>> from deocc_core.render.raster import rasterize
        >>> v = np.array([[0, 0, 1], [0, 30, 1], [30, 0, 1]], np.float32)
        >>> r = rasterize(v, np.array([[0, 1, 2]]), 32, 32, cull_backfaces=False)
        >>> s = face_samples(np.full((32, 32, 3), 128, np.uint8), r, np.tile([0, 0, 1.0], (3, 1)),
        ...                  np.full(3, 0.5))
        >>> s.colors.shape[1], s.normals.shape[1], bool(s.weights.min() == 1)
        (3, 3, True)
    """
    img = check_array(np.asarray(image), "image", raster.tri_id.shape + (3,), np.uint8)
    v = raster.n_vertices
    nrm = check_array(np.asarray(normals), "normals", (v, 3)).astype(np.float32)
    alb = np.broadcast_to(np.asarray(albedo, np.float32), (v, 3))
    vw = (
        np.ones(v, np.float32)
        if vertex_weights is None
        else check_array(np.asarray(vertex_weights), "vertex_weights", (v,)).astype(np.float32)
    )
    vp = (
        np.ones(v, np.float32)
        if vertex_prior is None
        else check_array(np.asarray(vertex_prior), "vertex_prior", (v,)).astype(np.float32)
    )
    attrs = [nrm, alb, vw[:, None], vp[:, None]]
    k = 0
    if albedo_basis is not None:
        ab = check_array(np.asarray(albedo_basis), "albedo_basis", (3 * v, None))
        k = ab.shape[1]
        attrs.append(ab.reshape(v, 3 * k).astype(np.float32))
    field = interpolate(raster, np.concatenate(attrs, 1))
    mask = raster.covered.astype(np.uint8)
    if erode_px > 0:
        mask = cv2.erode(mask, np.ones((2 * erode_px + 1,) * 2, np.uint8))
    rows, cols = np.nonzero(mask)
    f = field[rows, cols]
    n = f[:, :3]
    n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-6)
    w = np.clip(f[:, 6], 0.0, 1.0) * np.clip(n[:, 2] / max(grazing, 1e-6), 0.0, 1.0)
    n = n.astype(np.float32)
    return FaceSamples(
        img[rows, cols].astype(np.float32) / 255.0,
        n,
        f[:, 3:6].astype(np.float32),
        w.astype(np.float32),
        np.stack([rows, cols], 1).astype(np.int32),
        None if vertex_prior is None else np.clip(f[:, 7], 0.0, 1.0).astype(np.float32),
        f[:, 8 : 8 + 3 * k].reshape(-1, 3, k) if k else None,
        sh_basis(n).astype(np.float64),
    )


def estimate_face_light(
    image: npt.NDArray[np.uint8],
    raster: Raster,
    normals: npt.NDArray[np.floating],
    albedo: npt.NDArray[np.floating],
    vertex_weights: npt.NDArray[np.floating] | None = None,
    *,
    vertex_prior: npt.NDArray[np.floating] | None = None,
    albedo_basis: npt.NDArray[np.floating] | None = None,
    albedo_std: npt.NDArray[np.floating] | None = None,
    config: LightConfig | None = None,
) -> tuple[LightEstimate, FaceSamples]:
    """:func:`face_samples` then :func:`estimate_light`: light and skin colour of a fitted face.

    Args:
        image: ``[H, W, 3]`` uint8 RGB photo.
        raster: the face's raster at the fitted pose.
        normals: ``[V, 3]`` camera-space unit vertex normals.
        albedo: ``[V, 3]`` reference albedo in [0, 1].
        vertex_weights: ``[V]`` prior trust per vertex (see :func:`face_samples`).
        vertex_prior: ``[V]`` likely-visible-skin preference (see :func:`face_samples`).
        albedo_basis: ``[3V, K]`` model albedo basis, to fit coefficients too.
        albedo_std: ``[K]`` their prior std.
        config: see :class:`LightConfig` (default: its defaults).

    Returns:
        ``(estimate, samples)``; ``estimate.weights`` lines up with ``samples.pixels``.

    Raises:
        InputError: too few usable face pixels.

    Example:
        >>> from deocc_core.render.raster import rasterize
        >>> v = np.array([[0, 0, 1], [0, 30, 1], [30, 0, 1]], np.float32)
        >>> r = rasterize(v, np.array([[0, 1, 2]]), 32, 32, cull_backfaces=False)
        >>> est, _ = estimate_face_light(np.full((32, 32, 3), 128, np.uint8), r,
        ...                              np.tile([0, 0, 1.0], (3, 1)), np.full(3, 0.5))
        >>> est.sh.shape, round(float(est.sh[0, 0] * 0.5), 2)
        ((9, 3), 0.5)
    """
    s = face_samples(
        image,
        raster,
        normals,
        albedo,
        vertex_weights,
        vertex_prior=vertex_prior,
        albedo_basis=albedo_basis,
    )
    est = estimate_light(
        s.colors,
        s.normals,
        s.albedo,
        s.weights,
        prior=s.prior,
        albedo_basis=s.albedo_basis,
        albedo_std=albedo_std,
        config=config,
        basis=s.sh_basis,
    )
    return est, s
