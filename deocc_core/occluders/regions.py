"""Which part of the face an occluder covers (the paper's Table 1 groups), and a region mix.

The face is cut into four quadrants by the nose line (landmarks 27 → 33) and the line
across it at landmark 29 (between the eyes and the nose tip): upper-right, upper-left,
lower-right, lower-left (the subject's sides). A quadrant counts as covered when the
occluder object hides at least :data:`QUADRANT_COVER` of it, or most of the key part in it
(an eye, or that half of the mouth). Then:

- three quarters: three or four quadrants covered;
- left/right half: both quadrants of one side;
- upper / lower: otherwise, by which half is covered more (eyes and brows vs nose tip,
  mouth and chin);
- other: nothing covered beyond :data:`MIN_COVER` (e.g. a hand above the forehead).

Masks therefore land in "lower" at any yaw (the old threshold rules filed 16 % of them as a
half), glasses in "upper", a hand over an eye and a cheek in "left/right half".
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.errors import ConfigError
from deocc_core.landmarks.parts import part, point
from deocc_core.occluders.classes import OccluderClass, Region

__all__ = [
    "classify_region",
    "face_hull_mask",
    "quadrant_cover",
    "RegionMix",
    "parse_region_mix",
    "RECIPES",
    "Recipe",
    "DEFAULT_MIX",
]

QUADRANT_COVER = 0.3  # share of a quadrant hidden for it to count as covered
PART_COVER = 0.5  # share of an eye / half-mouth hidden for its quadrant to count
MIN_COVER = 0.04  # below this (in every quadrant) the label is OTHER
OBJECT_ALPHA = 8  # occ_mask level (of 255) that counts as covered: tinted lenses count


def face_hull_mask(
    landmarks: npt.NDArray[np.floating], shape: tuple[int, int]
) -> npt.NDArray[np.bool_]:
    """``[H, W]`` bool: the landmark hull up to the brows' top (a face region without a render).

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> lm = m.mean[m.landmarks68, :2] * [0.4, -0.4] + 64
        >>> tip = np.round(lm[point("nose_tip")]).astype(int)
        >>> bool(face_hull_mask(lm, (128, 128))[tip[1], tip[0]])
        True
    """
    lm = np.asarray(landmarks, np.float64)
    brows = lm[np.r_[part("brow_right"), part("brow_left")]]
    pts = np.concatenate([lm[part("jaw")], brows + (brows - lm[point("nose_tip")]) * 0.15])
    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(
        m, np.round(cv2.convexHull(pts.astype(np.float32))[:, 0]).astype(np.int32), 1
    )
    return m.astype(bool)


def _poly(lm: np.ndarray, idx: npt.ArrayLike, shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(np.round(lm[np.asarray(idx)]).astype(np.int32)), 1)
    return m.astype(bool)


def quadrant_cover(
    occ_mask: npt.NDArray[np.uint8],
    landmarks: npt.NDArray[np.floating],
    face_mask: npt.NDArray[np.uint8] | None = None,
) -> dict[str, float]:
    """Share of each face quadrant (and of its key part) the object hides.

    Returns:
        ``{"ur", "ul", "lr", "ll"}`` quadrant shares and ``{"eye_r", "eye_l", "mouth_r",
        "mouth_l"}`` part shares, in [0, 1] (``r``/``l``: the subject's right / left).
    """
    # every second pixel: shares are ratios, a 2x subsample leaves them within ~1 %
    occ = occ_mask[::2, ::2] >= OBJECT_ALPHA
    h, w = occ.shape
    lm = np.asarray(landmarks, np.float64) / 2
    face = (face_mask[::2, ::2] > 127) if face_mask is not None else face_hull_mask(lm, (h, w))
    if face.sum() < 8:
        face = face_hull_mask(lm, (h, w))
    yy, xx = np.mgrid[0:h, 0:w]
    top, bottom = lm[point("nose_top")], lm[point("nose_base_center")]
    axis = (bottom - top) / max(float(np.linalg.norm(bottom - top)), 1e-6)
    rel_x, rel_y = xx - lm[point("nose_bridge_2"), 0], yy - lm[point("nose_bridge_2"), 1]
    along = rel_x * axis[0] + rel_y * axis[1]  # > 0 below the split line
    across = rel_x * axis[1] - rel_y * axis[0]  # < 0 on the image-left: the subject's right
    upper, right = along < 0, across < 0
    quads = {
        "ur": face & upper & right,
        "ul": face & upper & ~right,
        "lr": face & ~upper & right,
        "ll": face & ~upper & ~right,
    }
    out = {k: float((occ & v).sum()) / max(int(v.sum()), 1) for k, v in quads.items()}
    mouth = _poly(lm, part("lips_outer"), (h, w))
    parts = {
        "eye_r": _poly(lm, part("eye_right"), (h, w)),
        "eye_l": _poly(lm, part("eye_left"), (h, w)),
        "mouth_r": mouth & right,
        "mouth_l": mouth & ~right,
    }
    for k, v in parts.items():
        out[k] = float((occ & v).sum()) / max(int(v.sum()), 1) if v.any() else 0.0
    return out


def classify_region(
    occ_mask: npt.NDArray[np.uint8],
    landmarks: npt.NDArray[np.floating],
    face_mask: npt.NDArray[np.uint8] | None = None,
) -> Region:
    """Label what an occluder object covers (see the module docstring).

    Args:
        occ_mask: ``[H, W]`` uint8 object mask (opacity 0..255).
        landmarks: ``[68, 2]`` pixels.
        face_mask: ``[H, W]`` uint8 face region (the render's M); default the landmark hull.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> lm = m.mean[m.landmarks68, :2] * [0.4, -0.4] + 64
        >>> occ = np.zeros((128, 128), np.uint8); occ[int(lm[point("nose_base_center"), 1]):] = 255
        >>> classify_region(occ, lm).name
        'LOWER'
    """
    c = quadrant_cover(occ_mask, landmarks, face_mask)
    covered = {
        "ur": c["ur"] >= QUADRANT_COVER or c["eye_r"] >= PART_COVER,
        "ul": c["ul"] >= QUADRANT_COVER or c["eye_l"] >= PART_COVER,
        "lr": c["lr"] >= QUADRANT_COVER or c["mouth_r"] >= PART_COVER,
        "ll": c["ll"] >= QUADRANT_COVER or c["mouth_l"] >= PART_COVER,
    }
    n = sum(covered.values())
    if n >= 3:
        return Region.THREE_QUARTERS
    if n == 2 and ((covered["ur"] and covered["lr"]) or (covered["ul"] and covered["ll"])):
        return Region.LEFT_RIGHT_HALF
    upper = max(c["ur"], c["ul"], c["eye_r"] * 0.5, c["eye_l"] * 0.5)
    lower = max(c["lr"], c["ll"], c["mouth_r"] * 0.5, c["mouth_l"] * 0.5)
    if max(upper, lower) < MIN_COVER:
        return Region.OTHER
    return Region.UPPER if upper > lower else Region.LOWER


@dataclass(frozen=True)
class Recipe:
    """Occluders drawn together to aim at a region.

    ``items`` are ``(class, place)`` pairs (place for hands); ``weight`` is the recipe's
    share within its region (it keeps the classes balanced).
    """

    region: Region
    items: tuple[tuple[OccluderClass, str | None], ...]
    weight: float = 1.0


_C = OccluderClass
RECIPES: tuple[Recipe, ...] = (
    Recipe(Region.LOWER, ((_C.MASK, None),), 0.32),
    Recipe(Region.LOWER, ((_C.SCARF, None),), 0.25),
    Recipe(Region.LOWER, ((_C.CUP, None),), 0.28),
    Recipe(Region.LOWER, ((_C.HAND, "mouth"),), 0.1),
    Recipe(Region.LOWER, ((_C.HAND, "chin"),), 0.05),
    Recipe(Region.UPPER, ((_C.EYEGLASSES, None),), 0.4),
    Recipe(Region.UPPER, ((_C.SUNGLASSES, None),), 0.4),
    Recipe(Region.UPPER, ((_C.HAND, "eyes"),), 0.1),
    Recipe(Region.UPPER, ((_C.HAND, "forehead"),), 0.05),
    Recipe(Region.UPPER, ((_C.HAND, "above"),), 0.05),  # the paper's failure case
    Recipe(Region.LEFT_RIGHT_HALF, ((_C.HAND, "half"),), 0.5),
    Recipe(Region.LEFT_RIGHT_HALF, ((_C.HAND, "cheek"),), 0.35),
    Recipe(Region.LEFT_RIGHT_HALF, ((_C.HAND, "cheek"), (_C.HAND, "eyes")), 0.15),
    Recipe(Region.THREE_QUARTERS, ((_C.MASK, None), (_C.SUNGLASSES, None)), 0.3),
    Recipe(Region.THREE_QUARTERS, ((_C.SCARF, None), (_C.SUNGLASSES, None)), 0.2),
    Recipe(Region.THREE_QUARTERS, ((_C.CUP, None), (_C.SUNGLASSES, None)), 0.15),
    Recipe(Region.THREE_QUARTERS, ((_C.MASK, None), (_C.HAND, "eyes")), 0.15),
    Recipe(Region.THREE_QUARTERS, ((_C.HAND, "half"), (_C.MASK, None)), 0.1),
    Recipe(Region.THREE_QUARTERS, ((_C.SCARF, None), (_C.HAND, "eyes")), 0.1),
)


@dataclass(frozen=True)
class RegionMix:
    """Target shares of the evaluation regions in a build (need not sum to 1).

    Attributes:
        weights: region → weight; regions with weight 0 (or without a recipe for the
            allowed classes) are not aimed at.
    """

    weights: tuple[tuple[Region, float], ...]

    def recipes(self, classes: list[OccluderClass]) -> list[tuple[Recipe, float]]:
        """Recipes usable with ``classes``, each with its sampling weight."""
        allowed = set(classes)
        out = []
        for region, w in self.weights:
            usable = [
                r for r in RECIPES if r.region == region and all(c in allowed for c, _ in r.items)
            ]
            total = sum(r.weight for r in usable)
            for r in usable:
                out.append((r, w * r.weight / total))
        return out

    def draw_region(
        self, rng: np.random.Generator, classes: list[OccluderClass], region: Region
    ) -> Recipe:
        """A recipe for ``region`` (by the recipes' weights) with the allowed ``classes``.

        Raises:
            ConfigError: no recipe of that region fits the classes.
        """
        pool = [(r, w) for r, w in self.recipes(classes) if w > 0 and r.region == region]
        if not pool:
            raise ConfigError(f"no occluder recipe for region {region.name.lower()}")
        p = np.array([w for _, w in pool], np.float64)
        return pool[int(rng.choice(len(pool), p=p / p.sum()))][0]

    def draw(self, rng: np.random.Generator, classes: list[OccluderClass]) -> Recipe:
        """A recipe for the region mix restricted to ``classes``.

        Raises:
            ConfigError: no recipe fits the allowed classes.
        """
        pool = [(r, w) for r, w in self.recipes(classes) if w > 0]
        if not pool:
            raise ConfigError(
                f"no occluder recipe for classes {[c.name.lower() for c in classes]} "
                "within the region mix"
            )
        p = np.array([w for _, w in pool], np.float64)
        return pool[int(rng.choice(len(pool), p=p / p.sum()))][0]


DEFAULT_MIX = RegionMix(
    (
        (Region.LOWER, 0.4),
        (Region.UPPER, 0.32),
        (Region.LEFT_RIGHT_HALF, 0.14),
        (Region.THREE_QUARTERS, 0.14),
    )
)


def parse_region_mix(spec: str) -> RegionMix:
    """``"lower:0.4,upper:0.32,left_right_half:0.14,three_quarters:0.14"`` → :class:`RegionMix`.

    ``"natural"`` gives equal weight to every single-occluder recipe (no aim).

    Example:
        >>> parse_region_mix("lower:1,upper:1").weights[1][0].name
        'UPPER'

    Raises:
        ConfigError: unknown region name or a negative / non-numeric weight.
    """
    if spec.strip().lower() == "natural":
        return RegionMix(((Region.LOWER, 0.5), (Region.UPPER, 0.5)))
    names = {r.name.lower(): r for r in Region if r != Region.OTHER}
    out = []
    for item in spec.split(","):
        if not item.strip():
            continue
        name, _, value = item.partition(":")
        region = names.get(name.strip().lower())
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if region is None or weight < 0:
            raise ConfigError(
                f"bad region mix item {item.strip()!r} "
                f"(want name:weight, names: {', '.join(names)})"
            )
        out.append((region, weight))
    if not out or sum(w for _, w in out) <= 0:
        raise ConfigError(f"region mix {spec!r} has no positive weight")
    return RegionMix(tuple(out))
