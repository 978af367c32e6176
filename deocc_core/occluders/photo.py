"""Match a rendered occluder to its photo: sharpness, noise, resolution and JPEG.

A rendered object is pixel-sharp and noise-free; the face around it is soft (optics,
resampling from the source photo), noisy and JPEG-compressed. A network would find the
occluder from those cues alone. This module measures them on the face crop
(:func:`measure_photo`) and applies them to the object (the compositing in
:mod:`deocc_core.occluders.scene` calls :func:`blur_layer`, :func:`add_noise` and
:func:`source_grid`).

- Sharpness: edge blur sigma from the re-blur ratio (Zhuo & Sim 2011): at a Gaussian
  edge of sigma s, re-blurring with s0 lowers the gradient maximum by
  ``sqrt(s^2 + s0^2) / s``; the median over the face's strongest edges gives s.
- Noise: Immerkaer's fast estimator (1996) on the face's flattest half.
- Source grid: the crop is a resampled photo (``source_scale`` crop pixels per source
  pixel). The object region is taken to the source resolution and back (losing the detail
  the face never had), JPEG-encoded there at the source's quality, and pasted back only
  in the 16-pixel blocks it touches.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

__all__ = [
    "PhotoStats",
    "measure_photo",
    "estimate_blur",
    "estimate_noise",
    "jpeg_quality",
    "edge_sharpness",
    "add_noise",
    "source_grid",
    "block_size",
]

REBLUR = 1.0  # sigma of the re-blur, pixels
MIN_SIGMA, MAX_SIGMA = 0.3, 4.0

# libjpeg's standard luminance table (natural order; only its sum is used)
_STD_LUMA_SUM = sum(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
     56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81,
     104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
)  # fmt: skip


@dataclass(frozen=True)
class PhotoStats:
    """What an occluder must match in a face crop.

    Attributes:
        blur_sigma: Gaussian edge blur of the face, crop pixels.
        noise_sigma: noise std, 8-bit levels.
        jpeg_quality: the source's JPEG quality (1-100) or None (not a JPEG / unknown).
        source_scale: crop pixels per source-photo pixel (> 1: the crop was upsampled).
        saturation: how colourful the photo is, 0 (greyscale) .. 1 (ordinary colour): the
            occluder's chroma is scaled by it.
    """

    blur_sigma: float
    noise_sigma: float
    jpeg_quality: int | None = None
    source_scale: float = 1.0
    saturation: float = 1.0


def _grey(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    return (image.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])).astype(np.float32)


def _grad(g: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) / 8
    return np.sqrt(gx * gx + gy * gy)


@lru_cache(maxsize=1)
def _blur_calibration() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Raw estimator output vs true sigma on synthetic edges (the Sobel's own width bends it)."""
    rng = np.random.default_rng(1234)
    big = np.zeros((512, 512), np.float32)
    for _ in range(60):
        c = rng.uniform(0, 512, 2).astype(int)
        cv2.circle(
            big, (int(c[0]), int(c[1])), int(rng.uniform(10, 80)), float(rng.uniform(40, 220)), -1
        )
    sharp = cv2.resize(big, (128, 128), interpolation=cv2.INTER_AREA)  # box-filtered: ~0.3 px
    region = np.ones(sharp.shape, bool)
    true = np.array([0.3, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0])
    raw = np.array(
        [_raw_blur(cv2.GaussianBlur(sharp, (0, 0), np.sqrt(max(s * s - 0.09, 1e-4))), region)
         for s in true]
    )  # fmt: skip
    return raw, true


def _raw_blur(g: npt.NDArray[np.float32], region: npt.NDArray[np.bool_]) -> float:
    g0 = _grad(g)
    g1 = _grad(cv2.GaussianBlur(g, (0, 0), REBLUR))
    vals = g0[region]
    if vals.size < 20:
        return 1.0
    thr = np.percentile(vals, 92)
    edge = region & (g0 >= max(thr, 2.0))
    # local maxima across the edge only (the ratio is defined at the gradient peak)
    edge &= g0 >= cv2.dilate(g0, np.ones((3, 3), np.uint8))
    if edge.sum() < 8:
        return 1.0
    r = g0[edge] / np.maximum(g1[edge], 1e-6)
    r = r[r > 1.0005]
    if r.size < 4:
        return MAX_SIGMA
    return float(np.median(REBLUR / np.sqrt(r * r - 1)))


def estimate_blur(image: npt.NDArray[np.uint8], region: npt.NDArray[np.bool_]) -> float:
    """Edge blur sigma (pixels) of ``image`` measured on the strongest edges in ``region``.

    Example:
        >>> img = np.zeros((64, 64, 3), np.uint8); img[:, 32:] = 200
        >>> soft = cv2.GaussianBlur(img, (0, 0), 2.0)
        >>> 1.8 < estimate_blur(soft, np.ones((64, 64), bool)) < 2.4
        True
    """
    raw = _raw_blur(_grey(image), region)
    cal_raw, cal_true = _blur_calibration()
    return float(np.clip(np.interp(raw, cal_raw, cal_true), MIN_SIGMA, MAX_SIGMA))


def estimate_noise(image: npt.NDArray[np.uint8], region: npt.NDArray[np.bool_]) -> float:
    """Luminance noise std (8-bit levels): Immerkaer's operator on the flatter half of ``region``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> img = np.clip(128 + rng.normal(0, 4, (96, 96, 1)), 0, 255)
        >>> img = np.repeat(img, 3, -1).astype(np.uint8)
        >>> 3.0 < estimate_noise(img, np.ones((96, 96), bool)) < 4.5
        True
    """
    g = _grey(image)
    k = np.float32([[1, -2, 1], [-2, 4, -2], [1, -2, 1]])
    resp = np.abs(cv2.filter2D(g, cv2.CV_32F, k))
    grad = _grad(cv2.GaussianBlur(g, (0, 0), 2.0))
    inner = cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if inner.sum() < 32:
        return 0.0
    flat = inner & (grad <= np.percentile(grad[inner], 50))
    return float(np.sqrt(np.pi / 2) * resp[flat].mean() / 6)


def jpeg_quality(path: str | Path) -> int | None:
    """Estimated JPEG quality (1-100, libjpeg scale) of a file; None if it is not a JPEG.

    Reads the luminance quantization table and inverts libjpeg's quality scaling on its
    sum (exact for files written by libjpeg / PIL / OpenCV).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "q.jpg")
        >>> _ = cv2.imwrite(p, np.zeros((16, 16, 3), np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 83])
        >>> jpeg_quality(p)
        83
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            tables = getattr(im, "quantization", None)
            if im.format != "JPEG" or not tables:
                return None
            luma = tables.get(0) or next(iter(tables.values()))
    except OSError:
        return None
    ratio = 100.0 * float(sum(luma)) / _STD_LUMA_SUM
    q = (200.0 - ratio) / 2 if ratio <= 100 else 5000.0 / ratio
    return int(np.clip(round(q), 1, 100))


def measure_photo(
    image: npt.NDArray[np.uint8],
    region: npt.NDArray[np.bool_],
    *,
    jpeg_quality: int | None = None,
    source_scale: float = 1.0,
) -> PhotoStats:
    """Measure blur and noise of a face crop inside ``region`` (the face, ``[H, W]`` bool).

    Example:
        >>> img = np.zeros((64, 64, 3), np.uint8); img[:, 32:] = 200
        >>> soft = cv2.GaussianBlur(img, (0, 0), 1.5)
        >>> measure_photo(soft, np.ones((64, 64), bool)).blur_sigma > 1
        True
    """
    sub = image[::4, ::4].astype(np.int16)
    chroma = float(np.median(sub.max(-1) - sub.min(-1)))  # levels; grey photo 0, skin ~30+
    return PhotoStats(
        estimate_blur(image, region),
        estimate_noise(image, region),
        jpeg_quality,
        float(source_scale),
        float(np.clip(chroma / 20.0, 0.0, 1.0)),
    )


def edge_sharpness(image: npt.NDArray[np.uint8], band: npt.NDArray[np.bool_]) -> float:
    """Contrast-normalised sharpness in ``band``: variance of the Laplacian / mean squared gradient.

    A plain variance of the Laplacian grows with edge contrast (a black frame on skin beats
    any facial edge at equal blur); dividing by the gradient energy leaves ~1/sigma^2.

    Example:
        >>> img = np.zeros((64, 64, 3), np.uint8); img[:, 32:] = 200
        >>> band = np.zeros((64, 64), bool); band[:, 28:36] = True
        >>> a, b = cv2.GaussianBlur(img, (0, 0), 1.0), cv2.GaussianBlur(img, (0, 0), 2.0)
        >>> edge_sharpness(a, band) > edge_sharpness(b, band)
        True
    """
    g = _grey(image)
    lap = cv2.Laplacian(g, cv2.CV_32F, ksize=3)
    grad = _grad(g)
    if band.sum() < 4:
        return float("nan")
    return float(lap[band].var() / max(float((grad[band] ** 2).mean()), 1e-6))


@lru_cache(maxsize=1)
def _noise_tile() -> npt.NDArray[np.float32]:
    """A fixed 256² × 4 standard-normal tile (luminance + 3 chroma channels)."""
    return np.random.default_rng(20240517).standard_normal((256, 256, 4), np.float32)


def add_noise(
    region: npt.NDArray[np.float32],
    weight: npt.NDArray[np.float32],
    sigma: float,
    rng: np.random.Generator,
) -> npt.NDArray[np.float32]:
    """Add photo-like noise (mostly luminance) of std ``sigma`` levels × ``weight`` to a region.

    Args:
        region: ``[h, w, 3]`` float32, 0..255 (modified copy returned).
        weight: ``[h, w]`` float32 in [0, 1] (the object's opacity: noise replaced there).
        sigma: std in levels.
        rng: picks the window of a fixed noise tile.

    Example:
        >>> flat, w = np.full((8, 8, 3), 100, np.float32), np.ones((8, 8), np.float32)
        >>> r = add_noise(flat, w, 3.0, np.random.default_rng(0))
        >>> 1.5 < float(r.std()) < 4.5
        True
    """
    h, w = weight.shape
    if sigma <= 0.05 or h == 0 or w == 0:
        return region
    tile = _noise_tile()
    reps = (-(-h // 256), -(-w // 256), 1)
    if reps[0] > 1 or reps[1] > 1:
        tile = np.tile(tile, reps)
    oy = int(rng.integers(0, tile.shape[0] - h + 1))
    ox = int(rng.integers(0, tile.shape[1] - w + 1))
    n = tile[oy : oy + h, ox : ox + w]
    noise = n[..., :1] * np.float32(0.92) + n[..., 1:] * np.float32(0.39)
    return region + noise * np.float32(sigma) * weight[..., None]


def block_size(stats: PhotoStats) -> int:
    """Side (crop pixels) of the blocks :func:`source_grid` rewrites: 16, or 16 source pixels."""
    s = float(stats.source_scale)
    return max(16, int(round(16 * s))) if abs(np.log(max(s, 1e-3))) > np.log(1.15) else 16


def source_grid(
    composite: npt.NDArray[np.uint8],
    touched: npt.NDArray[np.bool_],
    stats: PhotoStats,
) -> npt.NDArray[np.uint8]:
    """Give the touched pixels the source photo's resolution and JPEG artefacts.

    The 16-pixel blocks (source-grid blocks when the crop was resampled) that contain a
    touched pixel are taken to the source resolution, JPEG-encoded at the source's quality
    (when known), brought back, and pasted; every other pixel keeps ``composite`` bit for bit.

    Args:
        composite: ``[H, W, 3]`` uint8 image with the object.
        touched: ``[H, W]`` bool pixels the object (or its shadow) changed.
        stats: the photo's :class:`PhotoStats`.

    Returns:
        ``[H, W, 3]`` uint8.

    Example:
        >>> img = np.full((64, 64, 3), 120, np.uint8); comp = img.copy(); comp[20:30, 20:30] = 250
        >>> t = np.zeros((64, 64), bool); t[20:30, 20:30] = True
        >>> out = source_grid(comp, t, PhotoStats(1.0, 0.0, 60, 1.0))
        >>> kept, redone = out[:16] == img[:16], out[20:30, 20:30] != comp[20:30, 20:30]
        >>> bool(kept.all()), bool(redone.any())
        (True, True)
    """
    s = float(stats.source_scale)
    resample = abs(np.log(max(s, 1e-3))) > np.log(1.15)
    if stats.jpeg_quality is None and not resample:
        return composite
    if not touched.any():
        return composite
    h, w = touched.shape
    block = block_size(stats)
    ys, xs = np.nonzero(touched)
    by0, by1 = ys.min() // block, ys.max() // block + 1
    bx0, bx1 = xs.min() // block, xs.max() // block + 1
    y0, y1 = by0 * block, min(by1 * block, h)
    x0, x1 = bx0 * block, min(bx1 * block, w)
    sub = composite[y0:y1, x0:x1]
    sh, sw = sub.shape[:2]
    if resample:
        small = (max(1, int(round(sw / s))), max(1, int(round(sh / s))))
        interp = cv2.INTER_AREA if s > 1 else cv2.INTER_CUBIC
        work = cv2.resize(sub, small, interpolation=interp)
    else:
        work = sub
    if stats.jpeg_quality is not None:
        ok, buf = cv2.imencode(
            ".jpg", work[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(stats.jpeg_quality)]
        )
        if ok:
            work = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    if resample:
        interp = cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA
        work = cv2.resize(work, (sw, sh), interpolation=interp)
    # paste only in the blocks with a touched pixel
    t = touched[y0:y1, x0:x1]
    nby, nbx = -(-sh // block), -(-sw // block)
    pad = np.zeros((nby * block, nbx * block), bool)
    pad[:sh, :sw] = t
    hit = pad.reshape(nby, block, nbx, block).any((1, 3))
    keep = np.repeat(np.repeat(hit, block, 0), block, 1)[:sh, :sw]
    out = composite.copy()
    out[y0:y1, x0:x1] = np.where(keep[..., None], work, sub)
    return out
