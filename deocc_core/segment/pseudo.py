"""Pseudo-labels of real face masks: the segmenter's training data that looks like test data.

The real masked photos of ``faces_bulk`` (``face_mask_detection/with_mask``,
``rwmfd_part1``) have no pixel labels. Each face is detected and aligned as inference does;
its mask is cut by GrabCut, seeded from what a face mask is (the mouth covered, the eyes,
brows and forehead not; the lower face between the jaw line and the nose bridge likely) and
from the current segmenter's m̂; pixels outside the photo (replicate padding) and far outside
the face never count. A label is kept only when it covers the mouth, misses the eyes,
covers most of the lower face and is not the skin's colour (a bare lower face parts from the
background too); the rest are marked ``ok = False`` (kept for the sheet).

Photos split by a salted hash of their identity (rwmfd_part1: its person folder; with_mask:
the file): ``train`` labels are trained on, ``test`` photos are only looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.errors import InputError
from deocc_core.fileio import read_arrays, write_arrays_atomic
from deocc_core.imageio import IMAGE_SUFFIXES
from deocc_core.segment.faces import largest_face_crop
from deocc_core.segment.occ3d import fill_holes
from deocc_core.synth.splits import assign_split
from deocc_core.viz import image_grid

__all__ = [
    "PseudoLabel",
    "RealMasks",
    "label_sheet",
    "load_real_masks",
    "mask_pseudo_label",
    "real_mask_photos",
    "real_mask_rows",
    "save_real_masks",
]

SALT = "segmenter-real-masks"
TEST_FRACTION = 0.3
FOLDERS = {"with_mask": "face_mask_detection/with_mask", "rwmfd_part1": "rwmfd_part1"}
MIN_CONTRAST = 40.0  # Lab distance (OpenCV's 8-bit scale) of the mask's median to the skin's
_JAW, _BRIDGE = list(range(1, 16)), 29  # ibug-68: jaw contour, nose bridge
_EYES, _BROWS, _MOUTH = (range(36, 42), range(42, 48)), range(17, 27), range(48, 60)


@dataclass(frozen=True)
class PseudoLabel:
    """One face's label: ``target`` ``[S, S]`` bool, ``ok`` (passes the checks), ``reason``."""

    target: npt.NDArray[np.bool_]
    ok: bool
    reason: str


@dataclass(frozen=True)
class RealMasks:
    """Aligned real masked faces and their pseudo-labels.

    Attributes:
        images: ``[N, S, S, 3]`` uint8 RGB crops.
        targets: ``[N, S, S]`` bool pseudo-labels.
        ok: ``[N]`` bool, the label passed its checks.
        split: ``[N]`` str, "train" or "test".
        name: ``[N]`` str, ``<source>/<path under the source folder>``.
    """

    images: npt.NDArray[np.uint8]
    targets: npt.NDArray[np.bool_]
    ok: npt.NDArray[np.bool_]
    split: npt.NDArray[np.str_]
    name: npt.NDArray[np.str_]

    def trainable(self) -> RealMasks:
        """The train split's labels that passed their checks."""
        keep = self.ok & (self.split == "train")
        return RealMasks(*(getattr(self, k)[keep] for k in self.__dataclass_fields__))


def real_mask_photos(faces_bulk: Path) -> list[tuple[str, Path, str]]:
    """``(name, path, split)`` of every real masked photo, sorted by name.

    Raises:
        InputError: neither folder exists.
    """
    out = []
    for source, folder in FOLDERS.items():
        root = faces_bulk / folder
        for p in sorted(root.rglob("*")) if root.is_dir() else []:
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            rel = p.relative_to(root)
            identity = f"{source}/{rel.parts[0] if len(rel.parts) > 1 else rel.stem}"
            split = assign_split(identity, SALT, TEST_FRACTION)
            out.append((f"{source}/{rel.as_posix()}", p, split))
    if not out:
        raise InputError(f"{faces_bulk}: no real masked photos under {', '.join(FOLDERS.values())}")
    return out


def _fill(lm: np.ndarray, idx, s: int, grow: int = 0, convex: bool = True) -> np.ndarray:
    """``[S, S]`` bool polygon (or convex hull) of landmarks ``idx``, dilated ``grow`` px."""
    pts = np.round(lm[list(idx)]).astype(np.int32)
    m = np.zeros((s, s), np.uint8)
    if convex:
        cv2.fillConvexPoly(m, cv2.convexHull(pts), 1)
    else:
        cv2.fillPoly(m, [pts], 1)
    if grow:
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
    return m > 0


def mask_pseudo_label(
    image: npt.NDArray[np.uint8],
    landmarks: npt.NDArray[np.floating],
    inside: npt.NDArray[np.bool_],
    prob: npt.NDArray[np.floating],
) -> PseudoLabel:
    """A real face mask's pixels in an aligned crop (GrabCut from a face mask's prior).

    Args:
        image: ``[S, S, 3]`` uint8 RGB aligned crop.
        landmarks: ``[68, 2]`` crop pixels.
        inside: ``[S, S]`` bool, pixels that come from the photo (not replicate padding).
        prob: ``[S, S]`` float in [0, 1], the current segmenter's m̂.

    Returns:
        The label; ``ok`` False (with the reason) when it fails a check.
    """
    s = image.shape[0]
    lm = np.asarray(landmarks, np.float64)
    face_h = float(lm[8, 1] - lm[_BROWS, 1].min())
    lower = _fill(lm, [*_JAW, _BRIDGE], s, convex=False)
    eyes = _fill(lm, _EYES[0], s, max(2, s // 40)) | _fill(lm, _EYES[1], s, max(2, s // 40))
    mouth = _fill(lm, _MOUTH, s, 1)
    # where a mask may reach: the face's outline widened, down to a little below the chin
    allowed = _fill(lm, [*range(17), *_BROWS], s, round(0.08 * s))
    allowed[: int(lm[_BROWS, 1].min())] = False
    allowed[int(lm[8, 1] + 0.15 * face_h) :] = False
    allowed &= inside
    gc = np.full((s, s), cv2.GC_PR_BGD, np.uint8)
    gc[lower | (prob > 0.5)] = cv2.GC_PR_FGD
    gc[mouth] = cv2.GC_FGD
    gc[eyes | _fill(lm, _BROWS, s, 2) | ~allowed] = cv2.GC_BGD
    try:
        bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
        cv2.grabCut(image, gc, None, bgd, fgd, 4, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # a degenerate colour model (e.g. a flat crop)
        return PseudoLabel(np.zeros((s, s), bool), False, "grabcut failed")
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    _, cc = cv2.connectedComponents(fg)
    ids = np.unique(cc[mouth & (fg > 0)])
    fg = cv2.morphologyEx(
        np.isin(cc, ids[ids > 0]).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)
    )
    fg = fill_holes(fg > 0) & allowed  # a mask is one sheet: print and folds are on it
    # the skin the mask is told apart from: the face between the brows and the nose bridge
    skin = _fill(lm, [*range(17), *_BROWS], s) & inside & ~eyes & ~fg
    skin[: int(lm[_BROWS, 1].max())] = False
    skin[int(lm[_BRIDGE, 1]) :] = False
    return PseudoLabel(fg, *_check(image, fg, skin, lower, mouth, eyes))


def _check(
    image: np.ndarray,
    fg: np.ndarray,
    skin: np.ndarray,
    lower: np.ndarray,
    mouth: np.ndarray,
    eyes: np.ndarray,
) -> tuple[bool, str]:
    """``(ok, reason)``: does the label look like a face mask?

    It covers the mouth and most of the lower face, not the eyes, and its colour is not the
    skin's (a bare lower face also separates from the background).
    """
    if fg[mouth].mean() < 0.9:
        return False, "mouth not covered"
    if fg[eyes].mean() > 0.02:
        return False, "eyes covered"
    if fg[lower].mean() < 0.6:
        return False, "lower face not covered"
    if skin.sum() < 20:
        return False, "no skin seen"
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    if np.linalg.norm(np.median(lab[skin], 0) - np.median(lab[fg], 0)) < MIN_CONTRAST:
        return False, "skin-coloured"
    return True, "ok"


def real_mask_rows(
    photos: list[tuple[str, Path, str]],
    detector: object,
    segment: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.float32]],
    size: int = 128,
    progress: Callable[[int], None] | None = None,
) -> Iterator[dict]:
    """Detect, align and pseudo-label the largest face of each photo (no face: skipped).

    Args:
        photos: :func:`real_mask_photos`.
        detector: a landmark detector (``detect(image) -> faces``).
        segment: ``[S, S, 3]`` uint8 crop → ``[S, S]`` m̂ of the current segmenter.
        size: crop side.
        progress: called with 1 per photo.

    Yields:
        One dict per face with the :class:`RealMasks` fields of one crop.
    """
    for name, path, split in photos:
        if progress is not None:
            progress(1)
        found = largest_face_crop(path, detector, size)
        if found is None:
            continue
        al, inside, _ = found
        label = mask_pseudo_label(al.image, al.landmarks, inside, segment(al.image))
        yield {
            "images": al.image,
            "targets": label.target,
            "ok": label.ok,
            "split": split,
            "name": name,
        }


def save_real_masks(path: Path, rows: list[dict]) -> RealMasks:
    """Stack :func:`real_mask_rows` dicts into one ``.npz`` (atomically)."""
    if not rows:
        raise InputError(f"{path}: no face found in any real masked photo")
    masks = RealMasks(**{k: np.stack([r[k] for r in rows]) for k in RealMasks.__dataclass_fields__})
    arrays = {k: getattr(masks, k) for k in RealMasks.__dataclass_fields__}
    write_arrays_atomic(path, arrays, compressed=True)
    return masks


def load_real_masks(path: Path) -> RealMasks:
    """Read a :func:`save_real_masks` file.

    Raises:
        InputError: missing. FormatError: not a pseudo-label file.
    """
    fields = RealMasks.__dataclass_fields__
    return RealMasks(**read_arrays(path, fields, "real-mask label file", "train-segmenter pseudo"))


def label_sheet(masks: RealMasks, cols: int = 10) -> npt.NDArray[np.uint8]:
    """The crops with their labels tinted green; a red frame marks a rejected label.

    Returns:
        ``[H, W, 3]`` uint8 RGB sheet, ``cols`` crops a row.
    """
    tiles = []
    for img, t, ok in zip(masks.images, masks.targets, masks.ok, strict=True):
        tile = np.where(t[..., None], (img * 0.5 + np.array([0, 255, 0]) * 0.5), img)
        tile = tile.astype(np.uint8)
        if not ok:
            cv2.rectangle(tile, (0, 0), (tile.shape[1] - 1, tile.shape[0] - 1), (255, 0, 0), 2)
        tiles.append(tile)
    return image_grid([tiles[i : i + cols] for i in range(0, len(tiles), cols)])
