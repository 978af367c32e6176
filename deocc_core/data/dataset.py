"""Stream shards into training: exactly-once-per-epoch sharding over DDP ranks × loader
workers, epoch-seeded order, resumable position, paired augmentation.

Every (shard, index) pair of the split is listed once (identities only: a few MB for
100k samples); each epoch permutes the list with (seed, epoch) and stream ``s`` of ``S =
world_size × num_workers`` takes items ``s, s + S, ...``. Workers open their own HDF5
handles lazily (never shared across fork).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from deocc_core.errors import ConfigError, FormatError
from deocc_core.landmarks.ibug import ibug_scheme
from deocc_core.nets.io import images_to_tensor
from deocc_core.synth.inspect import shard_paths
from deocc_core.synth.shards import ShardReader
from deocc_core.synth.splits import assign_split

__all__ = ["ShardDataset", "AugmentConfig", "augment_pair"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AugmentConfig:
    """pix2pix-style paired jitter: resize up by ``scale`` then random-crop back; flip."""

    scale: float = 286 / 256
    flip: bool = True


def augment_pair(
    arrays: dict[str, np.ndarray], size: int, rng: np.random.Generator, cfg: AugmentConfig
) -> dict[str, np.ndarray]:
    """Apply one drawn jitter (resize up, random crop, horizontal flip) to every array of a sample.

    Images are ``[H, W, C]`` / ``[H, W]`` uint8 (``face_mask`` resized nearest, the rest
    bilinear); an optional ``landmarks`` ``[68, 2]`` float32 entry is moved with the pixels
    and, on a flip, re-indexed with ``ibug_scheme().mirror`` so point 36 stays the right eye's
    outer corner.

    Convention:
        Landmarks in crop pixels, x right, y down, origin at the centre of the top-left
        pixel (deocc_core.morphable.params): resize maps ``x -> (x + 0.5)·big/H - 0.5``,
        crop subtracts the offset, flip maps ``x -> size - 1 - x``.

    Example:
        >>> a = {"x": np.arange(16, dtype=np.uint8).reshape(4, 4)}
        >>> augment_pair(a, 4, np.random.default_rng(0), AugmentConfig(scale=1.0, flip=False))["x"][0].tolist()
        [0, 1, 2, 3]
    """
    big = int(round(size * cfg.scale))
    x0, y0 = rng.integers(0, big - size + 1, 2) if big > size else (0, 0)
    flip = cfg.flip and rng.random() < 0.5
    out = {}
    for k, a in arrays.items():
        if k == "landmarks":
            continue
        src = a.shape[0]
        if big != src:
            interp = cv2.INTER_NEAREST if k == "face_mask" else cv2.INTER_LINEAR
            a = cv2.resize(a, (big, big), interpolation=interp)
        a = a[y0 : y0 + size, x0 : x0 + size]
        out[k] = np.ascontiguousarray(a[:, ::-1] if flip else a)
    if "landmarks" in arrays:
        src = next((a.shape[0] for k, a in arrays.items() if k != "landmarks"), size)
        lm = (arrays["landmarks"].astype(np.float32) + 0.5) * (big / src) - 0.5
        lm = lm - np.array([x0, y0], np.float32)
        if flip:
            lm[:, 0] = size - 1 - lm[:, 0]
            lm = lm[ibug_scheme().mirror]
        out["landmarks"] = np.ascontiguousarray(lm, dtype=np.float32)
    return out


class ShardDataset(IterableDataset):
    """Samples of one split of a shard folder as dicts of tensors.

    Yields ``occluded``, ``render``, ``gt`` ``[3, S, S]`` in [-1, 1], ``face_mask``,
    ``occ_mask`` ``[1, S, S]`` in [0, 1], ``landmarks`` ``[68, 2]`` float32 crop pixels
    (moved and mirrored with the images), ``region``, ``occluder_class`` (int64), ``item``
    (shard, index) ``[2]``.

    Args:
        folder: shard folder (with manifest.json). split: "train" or "test".
        subset: "all", or "train"/"val" to hold out ``val_fraction`` of identities.
        augment: paired jitter (training) or None. seed: order seed. rank, world_size: DDP.
    """

    def __init__(
        self,
        folder: str | Path,
        split: str = "train",
        *,
        subset: str = "all",
        val_fraction: float = 0.05,
        augment: AugmentConfig | None = AugmentConfig(),
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        limit: int | None = None,
    ) -> None:
        super().__init__()
        self._files: dict[int, h5py.File] = {}
        self.folder = Path(folder)
        self.paths = shard_paths(self.folder, split)
        if not self.paths:
            raise ConfigError(f"{folder}: no shards in split {split!r}")
        items = []
        size = None
        for si, p in enumerate(self.paths):
            with ShardReader(p) as r:
                if size is None:
                    size = r.resolution
                elif r.resolution != size:
                    raise FormatError(f"{p}: resolution {r.resolution}, other shards {size}")
                ids = r.arrays("identity")
            for i, ident in enumerate(ids):
                if subset == "all" or (
                    assign_split(str(ident), salt="val", test_fraction=val_fraction) == "test"
                ) == (subset == "val"):
                    items.append((si, i))
        if limit is not None:
            items = items[:limit]
        if not items:
            raise ConfigError(f"{folder}: split {split!r} subset {subset!r} is empty")
        self.items = np.array(items, np.int64)
        self.size = int(size)
        self.augment, self.seed, self.rank, self.world_size, self.shuffle = (
            augment,
            seed,
            rank,
            world_size,
            shuffle,
        )
        self.epoch = 0
        self.skip_batches, self.batch_size = 0, 1  # resume inside an epoch

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int, skip_batches: int = 0, batch_size: int = 1) -> None:
        """Order of the coming epoch, and how many loader batches were already consumed (resume).

        A DataLoader with W workers takes batch j from worker j % W, so worker w skips
        the batches it had produced.
        """
        self.epoch, self.skip_batches, self.batch_size = epoch, skip_batches, batch_size

    def order(self) -> np.ndarray:
        if not self.shuffle:
            return self.items
        return self.items[
            np.random.default_rng([self.seed, self.epoch]).permutation(len(self.items))
        ]

    def _file(self, si: int) -> h5py.File:
        if si not in self._files:
            self._files[si] = h5py.File(self.paths[si], "r")
        return self._files[si]

    def read(self, si: int, i: int, rng: np.random.Generator | None) -> dict[str, torch.Tensor]:
        f = self._file(si)
        arrays = {
            k: f[k][i] for k in ("occluded", "render", "gt", "face_mask", "occ_mask", "landmarks")
        }
        if self.augment is not None and rng is not None:
            arrays = augment_pair(arrays, self.size, rng, self.augment)
        out = {k: images_to_tensor(arrays[k]) for k in ("occluded", "render", "gt")}
        for k in ("face_mask", "occ_mask"):
            out[k] = torch.from_numpy(arrays[k].astype(np.float32) / 255.0)[None]
        out["landmarks"] = torch.from_numpy(
            np.ascontiguousarray(arrays["landmarks"], dtype=np.float32)
        )
        out["region"] = torch.tensor(int(f["region"][i]))
        out["occluder_class"] = torch.tensor(int(f["occluder_class"][i]))
        out["item"] = torch.tensor([si, i])  # (shard, index): where the sample came from
        return out

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        streams = self.world_size * nw
        stream = self.rank * nw + wid
        done = (self.skip_batches - wid + nw - 1) // nw if self.skip_batches > wid else 0
        skip = done * self.batch_size
        mine = self.order()[stream::streams][skip:]
        for k, (si, i) in enumerate(mine):
            rng = (
                np.random.default_rng([self.seed, self.epoch, stream, k + skip])
                if self.augment
                else None
            )
            yield self.read(int(si), int(i), rng)

    def __del__(self) -> None:
        for f in self._files.values():
            try:
                f.close()
            except Exception:  # interpreter shutdown
                pass
