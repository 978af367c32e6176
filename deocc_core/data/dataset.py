"""Stream shards into training.

Exactly-once-per-epoch sharding over DDP ranks × loader workers, epoch-seeded order, resumable
position, paired augmentation.

Every (shard, index) pair of the split is listed once (identities only: a few MB for
100k samples); each epoch permutes the list with (seed, epoch) and stream ``s`` of ``S =
world_size × num_workers`` takes items ``s, s + S, ...``. Workers open their own HDF5
handles lazily (never shared across fork).
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from deocc_core.data.augment import AugmentConfig, augment_pair
from deocc_core.errors import ConfigError, FormatError
from deocc_core.nets.io import images_to_tensor
from deocc_core.synth.schema import ARRAY_KEYS, ENUMS, IMAGE_KEYS, MASK_KEYS
from deocc_core.synth.shards import ShardReader
from deocc_core.synth.splits import assign_split
from deocc_core.synth.verify import shard_paths

__all__ = ["ShardDataset"]

log = logging.getLogger(__name__)
DEFAULT_AUGMENT = AugmentConfig()


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
        augment: AugmentConfig | None = DEFAULT_AUGMENT,
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
        """This epoch's ``[n, 2]`` (shard, index) items: permuted by (seed, epoch) if shuffling."""
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
        """Sample ``i`` of shard ``si`` as tensors (see the class), augmented by ``rng``."""
        f = self._file(si)
        arrays = {k: f[k][i] for k in ARRAY_KEYS}
        if self.augment is not None and rng is not None:
            arrays = augment_pair(arrays, self.size, rng, self.augment)
        out = {k: images_to_tensor(arrays[k]) for k in IMAGE_KEYS}
        for k in MASK_KEYS:
            out[k] = torch.from_numpy(arrays[k].astype(np.float32) / 255.0)[None]
        out["landmarks"] = torch.from_numpy(
            np.ascontiguousarray(arrays["landmarks"], dtype=np.float32)
        )
        for k in ENUMS:
            out[k] = torch.tensor(int(f[k][i]))
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
