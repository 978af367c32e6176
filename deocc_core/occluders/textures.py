"""Fabric and material textures for 3D occluders (procedural, or images from asset packs).

Textures multiply the albedo; they tile, and their scale is physical (``mm_per_texel``),
so a knit rib or a check pattern has the same size on every face. Base tiles come from a
fixed seed (cached, built on first use) and each occluder draws its own window, colours
and orientation from its ``rng``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.occluders.mesh import Texture

__all__ = [
    "nonwoven",
    "weave",
    "pattern_texture",
    "knit",
    "load_texture_images",
    "random_fabric_colour",
]

F32 = npt.NDArray[np.float32]
TILE = 128


def _wrap_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a tileable image (periodic borders)."""
    p = int(np.ceil(4 * sigma)) + 1
    pad = [(p, p), (p, p)] + [(0, 0)] * (img.ndim - 2)
    out = cv2.GaussianBlur(np.pad(img, pad, mode="wrap"), (0, 0), sigma)
    return out[p:-p, p:-p]


@lru_cache(maxsize=1)
def _noise_tiles() -> F32:
    """Two smooth noise tiles ``[2, TILE, TILE]`` (fine and coarse), fixed seed, tileable."""
    rng = np.random.default_rng(7)
    out = []
    for sigma in (0.8, 4.0):
        n = rng.standard_normal((TILE, TILE)).astype(np.float32)
        n = _wrap_blur(n, sigma)
        out.append(n / max(float(n.std()), 1e-6))
    return np.stack(out)


def nonwoven(rng: np.random.Generator, strength: float = 0.06) -> Texture:
    """Surgical-mask fabric: fine fibrous mottling around 1."""
    fine, coarse = _noise_tiles()
    shift = rng.integers(0, TILE, 2)
    img = 1 + strength * (0.7 * np.roll(fine, tuple(shift), (0, 1)) + 0.5 * coarse)
    return Texture(np.repeat(img[..., None], 3, -1).astype(np.float32), 0.25)


def weave(rng: np.random.Generator, strength: float = 0.1, mm: float = 0.35) -> Texture:
    """Plain woven cloth: a fine over-under grid with some irregularity."""
    yy, xx = np.mgrid[0:TILE, 0:TILE].astype(np.float32)
    warp = np.sin(xx * np.pi / 2) * np.sin(yy * np.pi / 2 + np.pi / 4)
    fine, _ = _noise_tiles()
    img = 1 + strength * (0.6 * warp + 0.5 * np.roll(fine, int(rng.integers(TILE)), 0))
    return Texture(np.repeat(img[..., None], 3, -1).astype(np.float32), mm)


def knit(rng: np.random.Generator, strength: float = 0.22) -> Texture:
    """Knitted wool: vertical columns of V-shaped stitches (scarves)."""
    yy, xx = np.mgrid[0:TILE, 0:TILE].astype(np.float32)
    col = np.abs(((xx / 8) % 1) - 0.5) * 2  # 0 at a column centre
    stitch = np.abs((((yy + np.abs(((xx / 8) % 1) - 0.5) * 8) / 6) % 1) - 0.5) * 2
    img = 1 - strength * (0.6 * col**2 + 0.5 * stitch**3)
    _, coarse = _noise_tiles()
    img = img * (1 + 0.05 * np.roll(coarse, int(rng.integers(TILE)), 1))
    return Texture(
        np.repeat(img[..., None], 3, -1).astype(np.float32), float(rng.uniform(0.6, 1.0))
    )


def random_fabric_colour(rng: np.random.Generator) -> F32:
    """A plausible dyed-fabric albedo (muted more often than saturated)."""
    h = rng.uniform(0, 180)
    s = rng.choice([rng.uniform(0.05, 0.35), rng.uniform(0.35, 0.85)], p=[0.6, 0.4])
    v = rng.uniform(0.12, 0.85)
    hsv = np.uint8([[[h, s * 255, v * 255]]])
    return (cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0] / 255.0).astype(np.float32)


def pattern_texture(rng: np.random.Generator, base: npt.ArrayLike) -> Texture:
    """A printed / woven pattern in two or three colours: stripes, checks, tartan, dots.

    The texture holds colours (albedo is then 1), tiled at 0.5-1.5 mm per texel.
    """
    base = np.asarray(base, np.float32)
    second = random_fabric_colour(rng)
    third = np.clip(base * rng.uniform(0.4, 1.3) + rng.uniform(-0.1, 0.1, 3), 0, 1)
    kind = int(rng.integers(4))
    yy, xx = np.mgrid[0:TILE, 0:TILE].astype(np.float32)
    period = float(TILE / rng.choice([4, 8, 16]))
    if kind == 0:  # stripes
        m = ((yy // (period / 2)) % 2).astype(np.float32)[..., None]
        img = base * (1 - m) + second * m
    elif kind == 1:  # gingham checks
        a = ((yy // (period / 2)) % 2)[..., None]
        b = ((xx // (period / 2)) % 2)[..., None]
        img = base * (1 - 0.5 * (a + b)) + second * 0.5 * (a + b)
    elif kind == 2:  # tartan: overlapping bands of three colours
        a = (((yy % period) < period * 0.3) | ((yy % period) > period * 0.85))[..., None]
        b = (((xx % period) < period * 0.3) | ((xx % period) > period * 0.85))[..., None]
        img = base * (1 - 0.5 * (a | b)) + second * 0.5 * (a | b)
        img = np.where((a & b), third, img)
    else:  # polka dots
        d = np.hypot((xx % period) - period / 2, (yy % period) - period / 2)
        m = (d < period * 0.2).astype(np.float32)[..., None]
        img = base * (1 - m) + second * m
    img = _wrap_blur(img.astype(np.float32), 0.6)
    return Texture(np.clip(img, 0, 1).astype(np.float32), float(rng.uniform(0.5, 1.4)))


def load_texture_images(root: str | Path) -> list[F32]:
    """Colour textures (jpg/png) under ``root`` (e.g. MaskTheFace ``masks/textures``).

    Returns ``[h, w, 3]`` float32 images in [0, 1], at most 256 px; unreadable files are
    skipped.
    """
    out = []
    for p in sorted(Path(root).rglob("*")):
        if p.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            continue
        s = 256 / max(img.shape[:2])
        if s < 1:
            img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        out.append((img[:, :, ::-1].astype(np.float32) / 255.0).astype(np.float32))
    return out
