"""What fills the occluded pixels: G's raw output, or the completed deocc-face render.

``fill="render"`` pastes the completed render of deocc-face's own face model
(:mod:`deocc_core.render.complete`: the person's albedo fitted to the visible skin, hidden
texels mirrored / completed by the model, shaded with the photo's light) inside the
occlusion mask m̂, with the same feathered paste-back as G's output. Where the render does
not cover a pixel of m̂ (an occluder beyond the face silhouette: the neck, a hand) G's raw
output fills it, as before.

Optionally the render's brightness and colour are matched to the visible skin around the
mask (:func:`match_render`): a smooth per-channel gain, nothing added. Measured on held-out
real faces (tools/experiment_fill.py, docs/RESULTS.md) it gains 1.1-1.7 dB inside a white
KN95 mask (whose brightness pulls the light estimate, so the plain render comes out pale)
and -0.4 to +0.6 dB elsewhere: ``deocc-infer --fill render`` uses it.

Convention: crop pixels, ``[S, S]`` images, x right, y down.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array

__all__ = [
    "FILLS",
    "match_render",
    "render_fill",
    "prefill",
    "segmenter_mask",
    "given_mask_edge",
    "SEGMENTER_GROW_PX",
]

FILLS = ("g", "render")  # what fills m̂ (``--fill``; ``auto`` is resolved by the CLI)
_MIN_RING_PX = 20  # fewer visible skin pixels around the mask: no colour match
_GAIN_RANGE = (0.5, 2.0)  # a gain outside this is a bad ring (hair, shadow), not skin
# the segmenter's m̂ grown by this (px at 128 px, scaled): a given-mask G trains on occ_mask
# dilated by 0-3 px (mean 1.5), and the segmenter under-covers edges
SEGMENTER_GROW_PX = 2
_EDGE_SIGMA_PX = 0.6  # the ~1 px soft edge of the training masks (px at 128 px, scaled)


def match_render(
    render: npt.NDArray[np.uint8],
    crop: npt.NDArray[np.uint8],
    region: npt.NDArray[np.bool_],
    covered: npt.NDArray[np.bool_],
    ring: float = 0.08,
    sigma: float = 0.12,
) -> npt.NDArray[np.uint8]:
    """The render times a smooth per-channel gain that matches it to the skin around ``region``.

    The ring is the covered, unoccluded pixels within ``ring``·S of ``region``; the gain is a
    normalised convolution (Gaussian, ``sigma``·S) of crop / render over the ring, falling
    back to the ring's global gain far from it, clipped to [0.5, 2].

    Args:
        render: ``[S, S, 3]`` uint8 RGB, the completed render (0 where not covered).
        crop: ``[S, S, 3]`` uint8 RGB, the occluded crop.
        region: ``[S, S]`` bool, the pixels to fill.
        covered: ``[S, S]`` bool, where the render has the face.
        ring: ring width, fraction of S.
        sigma: the gain's smoothness, fraction of S.

    Returns:
        ``[S, S, 3]`` uint8, the matched render (the render itself when the ring is too small).

    Example:
        >>> r = np.full((32, 32, 3), 100, np.uint8); c = np.full_like(r, 150)
        >>> reg = np.zeros((32, 32), bool); reg[10:20, 10:20] = True
        >>> int(match_render(r, c, reg, np.ones_like(reg))[15, 15, 0])
        150
    """
    s = check_array(render, "render", (None, None, 3), np.uint8).shape[0]
    check_array(crop, "crop", (s, s, 3), np.uint8)
    dist = cv2.distanceTransform((~region).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    near = (dist > 0) & (dist <= max(ring * s, 2.0)) & covered
    r = render.astype(np.float32)
    c = crop.astype(np.float32)
    near &= r.min(-1) > 8  # the render's black background is not skin
    if near.sum() < _MIN_RING_PX:
        return render
    w = near.astype(np.float32)
    g0 = np.clip(c[near].sum(0) / np.maximum(r[near].sum(0), 1e-3), *_GAIN_RANGE)
    k = max(sigma * s, 1.0)

    def blur(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return cv2.GaussianBlur(x, (0, 0), k, borderType=cv2.BORDER_CONSTANT)

    ws = blur(w)
    # confidence of the local estimate: ~1 on the ring, -> 0 far from it (global gain there)
    conf = ws / (ws + 0.05)
    gain = np.empty_like(r)
    for ch in range(3):
        num, den = blur(w * c[..., ch]), blur(w * r[..., ch])
        local = np.clip(num / np.maximum(den, 1e-3), *_GAIN_RANGE)
        gain[..., ch] = conf * local + (1 - conf) * g0[ch]
    return np.clip(r * gain + 0.5, 0, 255).astype(np.uint8)


def render_fill(
    render: npt.NDArray[np.uint8],
    covered: npt.NDArray[np.bool_],
    g_raw: npt.NDArray[np.uint8],
    crop: npt.NDArray[np.uint8],
    region: npt.NDArray[np.bool_],
    *,
    match: bool = True,
) -> npt.NDArray[np.uint8]:
    """The fill image for ``fill="render"``: the render where it covers the face, else G's.

    Args:
        render: ``[S, S, 3]`` uint8 RGB, deocc-face's completed render of the crop.
        covered: ``[S, S]`` bool, its silhouette.
        g_raw: ``[S, S, 3]`` uint8 RGB, G's raw output (used outside the silhouette).
        crop: ``[S, S, 3]`` uint8 RGB, the occluded crop (for the colour match).
        region: ``[S, S]`` bool, the pixels to be filled (for the colour match's ring).
        match: match the render's colour to the skin around ``region`` (:func:`match_render`).

    Returns:
        ``[S, S, 3]`` uint8 RGB, every pixel redrawn (the paste-back decides where it goes).

    Example:
        >>> r = np.full((32, 32, 3), 100, np.uint8); g = np.zeros_like(r)
        >>> cov = np.zeros((32, 32), bool); cov[4:28, 4:28] = True
        >>> f = render_fill(r, cov, g, r, cov, match=False)
        >>> int(f[16, 16, 0]), int(f[0, 0, 0])
        (100, 0)
    """
    if match:
        render = match_render(render, crop, region, covered)
    # a soft edge (1 px) so the silhouette does not show as a step where G takes over
    a = cv2.GaussianBlur(covered.astype(np.float32), (0, 0), 1.0)
    a = np.where(covered, a, 0.0)[..., None]
    out = a * render.astype(np.float32) + (1 - a) * g_raw.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def prefill(
    crop: npt.NDArray[np.uint8],
    render: npt.NDArray[np.uint8],
    covered: npt.NDArray[np.bool_],
    mask: npt.NDArray[np.floating],
) -> npt.NDArray[np.uint8]:
    """A given-mask G's starting image: the crop with ``mask`` filled by the completed render.

    Inside the mask: the render colour-matched to the skin around it (:func:`render_fill`)
    where it covers the face, OpenCV's Telea inpainting of the crop where it does not (the
    neck, a hand beyond the silhouette); outside: the crop. Training (the shard loader) and
    inference build G's input with this one function.

    Args:
        crop: ``[S, S, 3]`` uint8 RGB, the occluded crop.
        render: ``[S, S, 3]`` uint8 RGB, the completed render (a shard's ``render``).
        covered: ``[S, S]`` bool, the render's silhouette.
        mask: ``[S, S]`` float in [0, 1], the occlusion mask to fill (soft edges blend).

    Returns:
        ``[S, S, 3]`` uint8 RGB.

    Example:
        >>> crop = np.full((32, 32, 3), 200, np.uint8); r = np.full_like(crop, 100)
        >>> cov = np.zeros((32, 32), bool); cov[:, :16] = True
        >>> m = np.zeros((32, 32), np.float32); m[8:24, 8:24] = 1
        >>> p = prefill(crop, r, cov, m)
        >>> int(p[0, 0, 0]), int(p[16, 12, 0]), int(p[16, 20, 0])
        (200, 200, 200)
    """
    s = check_array(crop, "crop", (None, None, 3), np.uint8).shape[0]
    check_array(render, "render", (s, s, 3), np.uint8)
    m = np.clip(np.asarray(mask, np.float32), 0.0, 1.0)
    region = m > 0.5
    if not region.any():
        return crop.copy()
    hole = (m > 0).astype(np.uint8)
    telea = cv2.inpaint(crop, hole, max(2.0, s / 64), cv2.INPAINT_TELEA)
    fill = render_fill(render, covered, telea, crop, region, match=True)
    out = m[..., None] * fill.astype(np.float32) + (1 - m[..., None]) * crop.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def segmenter_mask(
    m_hat: npt.NDArray[np.floating], grow_px: float = SEGMENTER_GROW_PX
) -> npt.NDArray[np.float32]:
    """The segmenter's m̂ as a given-mask G takes it: shaped like the masks it trains on.

    The trainer gives G the true object mask binarised, dilated by 0-3 px and with a ~1 px
    soft edge; m̂ is a probability with wide soft edges and a faint floor. So: m̂ ≥ 0.5,
    dilated by ``grow_px`` (at 128 px, scaled with the side), a Gaussian edge of 0.6 px
    whose far tails are snapped to 0 / 1. Fed raw instead, the soft m̂ blends the fill in
    twice (prefill, then output): the untrained G's fill lost 0.8 dB inside the occluder on
    96 deocc-face test samples (12.64 vs 13.44 dB).

    Args:
        m_hat: ``[S, S]`` float in [0, 1], the segmenter's occlusion probability.
        grow_px: dilation, pixels at 128 px.

    Returns:
        ``[S, S]`` float32 in [0, 1].

    Example:
        >>> p = np.zeros((128, 128), np.float32); p[40:80, 40:80] = 0.6; p[0, 0] = 0.3
        >>> g = segmenter_mask(p)  # grown 2 px: row 39 is in, 37 is the soft edge, 35 out
        >>> float(g[60, 60]), float(g[0, 0]), float(g[39, 60]), float(g[35, 60])
        (1.0, 0.0, 1.0, 0.0)
        >>> bool(0 < g[37, 60] < 1)
        True
    """
    s = np.asarray(m_hat).shape[0]
    m = (np.asarray(m_hat) >= 0.5).astype(np.uint8)
    return given_mask_edge(m, round(grow_px * s / 128))


def given_mask_edge(
    binary: npt.NDArray[np.uint8], radius: int, erode: bool = False
) -> npt.NDArray[np.float32]:
    """A binary mask grown (or shrunk) by ``radius`` px with the given-mask G's ~1 px soft edge.

    The one shape of the masks a given-mask G sees: the trainer's jittered true masks
    (:func:`deocc_core.data.augment.jitter_mask`) and the segmenter's m̂ at inference
    (:func:`segmenter_mask`) both end here.

    Args:
        binary: ``[S, S]`` uint8 0/1.
        radius: dilation (``erode``: erosion) radius, pixels of this crop; 0: none.
        erode: shrink instead of grow.

    Returns:
        ``[S, S]`` float32 in [0, 1]: a Gaussian edge (0.6 px at 128 px, scaled with the side)
        whose far tails are snapped to 0 / 1, so the core is exactly 1.

    Example:
        >>> m = np.zeros((128, 128), np.uint8); m[40:80, 40:80] = 1
        >>> g = given_mask_edge(m, 2)
        >>> float(g[39, 60]), float(g[35, 60]), bool(0 < g[37, 60] < 1)
        (1.0, 0.0, True)
    """
    scale = binary.shape[0] / 128
    if radius > 0 and binary.any():
        op = cv2.erode if erode else cv2.dilate
        k = 2 * radius + 1
        binary = op(binary, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    soft = cv2.GaussianBlur(binary.astype(np.float32), (0, 0), _EDGE_SIGMA_PX * max(scale, 1.0))
    soft[soft < 0.02] = 0.0
    soft[soft > 0.98] = 1.0
    return soft
