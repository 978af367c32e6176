"""deocc's own 3D occluders for the segmenter: occluded crops and object masks from shards.

``synth-occ build`` shards hold each occluded crop with its occluder's opacity
(``occ_mask``). A sample is kept only when its photo belongs to the wanted split of the
face crops (matched by file name: the segmenter's identity-disjoint split, not the
shards' own), so training takes train identities and the evaluation held-out ones.

The target is the object at opacity > 0.5; for eyeglasses frame and lenses (the definition
of CelebAMask-HQ's class 3 and of the held-out evaluation): the frame at opacity > 0.5
plus the tinted lenses, holes filled. The lenses carry a faint tint (opacity 1-64 of 255)
and thin frames at opacity > 0.5 are often broken at 128 px, so filling the frame alone
leaves most of them as outlines; the tint is taken one pixel in from its edge so the
antialiased halo around the frame does not fatten the target.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.errors import InputError
from deocc_core.segment.faces import FaceCrops
from deocc_core.synth.shards import ShardReader

__all__ = ["OccSamples", "fill_holes", "load_occ_samples"]


@dataclass(frozen=True)
class OccSamples:
    """3D-occluded crops.

    Attributes:
        images: ``[N, S, S, 3]`` uint8 RGB occluded crops.
        targets: ``[N, S, S]`` bool object masks (eyeglasses: frame + lenses, see above).
        frames: ``[N, S, S]`` bool the object alone (opacity > 0.5, lenses not filled).
        landmarks: ``[N, 68, 2]`` float32 crop pixels.
        classes: ``[N]`` str occluder class names (``hand``, ``cup``, ...).
    """

    images: npt.NDArray[np.uint8]
    targets: npt.NDArray[np.bool_]
    frames: npt.NDArray[np.bool_]
    landmarks: npt.NDArray[np.float32]
    classes: npt.NDArray[np.str_]

    def select(self, keep: npt.NDArray[np.bool_]) -> OccSamples:
        """The samples where ``keep`` ([N] bool) is true."""
        return OccSamples(**{k: getattr(self, k)[keep] for k in self.__dataclass_fields__})


def fill_holes(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """``mask`` ([S, S] bool) plus every region it encloses (background flooded from a corner)."""
    m = np.pad(mask.astype(np.uint8), 1)
    cv2.floodFill(m, None, (0, 0), 1)
    return mask | (m[1:-1, 1:-1] == 0)


def _inner(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """``mask`` ([S, S] bool) less its outer one-pixel rim (3x3 erosion)."""
    return cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


def _photo_splits(crops: FaceCrops) -> dict[str, str]:
    """File name → split of the face crops; names found twice are left out (ambiguous)."""
    seen: dict[str, str] = {}
    twice: set[str] = set()
    for name, split in zip(crops.name, crops.split, strict=True):
        base = str(name).rsplit("/", 1)[-1]
        if base in seen:
            twice.add(base)
        seen[base] = str(split)
    return {k: v for k, v in seen.items() if k not in twice}


def load_occ_samples(folder: Path, crops: FaceCrops, split: str) -> OccSamples:
    """Every shard sample under ``folder`` whose photo is in ``split`` of ``crops``.

    Raises:
        InputError: no shard under ``folder``, or no sample of that split.
    """
    paths = sorted(Path(folder).rglob("*.h5"))
    if not paths:
        raise InputError(f"{folder}: no synth-occ shards (*.h5) found")
    splits = _photo_splits(crops)
    parts: dict[str, list] = {k: [] for k in ("images", "occ", "landmarks", "classes")}
    for p in paths:
        with ShardReader(p) as r:
            names = {v: k for k, v in json.loads(r.attrs["occluder_classes"]).items()}
            keys = r.arrays("source_key")
            keep = np.array(
                [splits.get(str(k).split("#")[0].rsplit("/", 1)[-1]) == split for k in keys]
            )
            if not keep.any():
                continue
            parts["images"].append(r.arrays("occluded")[keep])
            parts["occ"].append(r.arrays("occ_mask")[keep])
            parts["landmarks"].append(r.arrays("landmarks")[keep])
            parts["classes"].append([names[int(c)] for c in r.arrays("occluder_class")[keep]])
    if not parts["images"]:
        raise InputError(f"{folder}: no shard sample of a {split} photo of the face crops")
    occ = np.concatenate(parts["occ"])
    classes = np.array(sum(parts["classes"], []))
    frames = occ > 127
    targets = np.array(
        [
            fill_holes(_inner(m > 0) | f) if c == "eyeglasses" else f
            for m, f, c in zip(occ, frames, classes, strict=True)
        ]
    )
    return OccSamples(
        np.concatenate(parts["images"]),
        targets,
        frames,
        np.concatenate(parts["landmarks"]).astype(np.float32),
        classes,
    )
