"""Stream shards into training (exactly once per epoch over DDP ranks × loader workers).

Epoch-seeded order, resumable position, paired augmentation, corrupt samples named.

Every (shard, index) pair of the split is listed once (identities only: a few MB for
100k samples); each epoch permutes the list with (seed, epoch) and stream ``s`` of ``S =
world_size × num_workers`` takes items ``s, s + S, ...``. Workers open their own HDF5
handles lazily (never shared across fork).

A sample that cannot be read (HDF5 / decompression error) or breaks the shard invariant
(``occluded`` differs from ``gt`` where ``changed_mask`` is 0: flipped bytes) raises
:class:`BadSample` naming the shard and the index; with ``skip_bad`` it is skipped, logged
and counted in :attr:`ShardDataset.bad_samples` (shared by the loader's workers).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from deocc_core.data.augment import AugmentConfig, augment_pair, jitter_mask
from deocc_core.errors import BadSample, ConfigError, DeoccError, FormatError
from deocc_core.nets.io import images_to_tensor
from deocc_core.synth.schema import ARRAY_KEYS, ENUMS, IMAGE_KEYS, MASK_KEYS
from deocc_core.synth.shards import ShardReader
from deocc_core.synth.splits import assign_split
from deocc_core.synth.verify import shard_paths

__all__ = ["ShardDataset", "BadSample", "one_line_error"]

log = logging.getLogger(__name__)

DEFAULT_AUGMENT = AugmentConfig()
# what h5py and its filters raise for damaged data
_READ_ERRORS = (OSError, ValueError, KeyError, RuntimeError, TypeError, IndexError)


def one_line_error(e: DeoccError) -> DeoccError:
    r"""The error a DataLoader worker raised, as the one line it had in the worker.

    A worker's exception reaches the main process as ``type(e)("Caught ... Original
    Traceback ... <module>.<Type>: <message>")``; this returns ``type(e)(<message>)``.

    Example:
        >>> e = BadSample("Caught BadSample in DataLoader worker process 0.\nOriginal "
        ...               "Traceback (most recent call last):\n  x\n"
        ...               "deocc_core.errors.BadSample: s.h5: sample 3: bad\n")
        >>> str(one_line_error(e))
        's.h5: sample 3: bad'
    """
    msg = str(e)
    if "Original Traceback" not in msg:
        return e
    last = [ln for ln in msg.splitlines() if ln.strip()][-1]
    prefix = f"{type(e).__module__}.{type(e).__name__}: "
    return type(e)(last[len(prefix) :] if last.startswith(prefix) else last)


class ShardDataset(IterableDataset):
    """Samples of one split of a shard folder as dicts of tensors.

    Yields ``occluded``, ``render``, ``gt`` ``[3, S, S]`` in [-1, 1], ``face_mask``,
    ``occ_mask`` ``[1, S, S]`` in [0, 1], ``landmarks`` ``[68, 2]`` float32 crop pixels
    (moved and mirrored with the images), ``region``, ``occluder_class`` (int64), ``item``
    (shard, index) ``[2]``. With ``given_mask`` (a given-mask G's run) also ``given_mask``
    ``[1, S, S]`` in [0, 1] (``occ_mask`` jittered like the segmenter's m̂:
    :func:`~deocc_core.data.augment.jitter_mask`) and ``prefill`` ``[3, S, S]`` in [-1, 1]
    (:func:`deocc_core.infer.fill.prefill` of the augmented uint8 images: the render fill,
    or Telea alone with ``prefill_render=False``, the no-render ablation).

    Args:
        folder: shard folder (with manifest.json). split: "train" or "test".
        subset: "all", or "train"/"val" to hold out ``val_fraction`` of identities.
        augment: paired jitter (training) or None. seed: order seed. rank, world_size: DDP.
        skip_bad: skip corrupt samples (logged, counted) instead of raising :class:`BadSample`.
        given_mask: also yield ``given_mask`` and ``prefill``. prefill_render: fill with the
            render (else Telea only).
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
        skip_bad: bool = False,
        given_mask: bool = False,
        prefill_render: bool = True,
    ) -> None:
        super().__init__()
        self.given_mask, self.prefill_render = given_mask, prefill_render
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
                try:
                    ids = r.arrays("identity")
                except _READ_ERRORS as e:
                    raise FormatError(f"{p}: identity list unreadable ({_short(e)})") from None
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
        self.skip_bad = skip_bad
        self._bad = mp.Value("q", 0)  # inherited by loader workers: they count here

    @property
    def bad_samples(self) -> int:
        """Corrupt samples skipped so far (all epochs, all workers of this process)."""
        return int(self._bad.value)

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int, skip_batches: int = 0, batch_size: int = 1) -> None:
        """Order of the coming epoch, and how many loader batches were already consumed (resume).

        A DataLoader with W workers takes batch j from worker j % W. On resume after
        ``skip_batches`` batches, new worker w plays the part of old worker
        ``(w + skip_batches) % W`` (the new loader starts at its worker 0, which must
        produce batch ``skip_batches``) and skips the batches that part had produced: the
        batch order is that of the uninterrupted epoch.
        """
        self.epoch, self.skip_batches, self.batch_size = epoch, skip_batches, batch_size

    def order(self) -> np.ndarray:
        """This epoch's ``[N, 2]`` (shard, index) items: permuted by (seed, epoch) if shuffling."""
        if not self.shuffle:
            return self.items
        return self.items[
            np.random.default_rng([self.seed, self.epoch]).permutation(len(self.items))
        ]

    def _file(self, si: int) -> h5py.File:
        if si not in self._files:
            self._files[si] = h5py.File(self.paths[si], "r")
        return self._files[si]

    def _read_arrays(self, si: int, i: int) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """Sample ``i`` of shard ``si`` as stored; :class:`BadSample` if damaged."""
        try:
            f = self._file(si)
            arrays = {k: f[k][i] for k in ARRAY_KEYS}
            enums = {k: int(f[k][i]) for k in ENUMS}
        except _READ_ERRORS as e:
            raise BadSample(f"{self.paths[si]}: sample {i}: unreadable ({_short(e)})") from None
        changed = (arrays["occluded"] != arrays["gt"]).any(-1)
        if (changed & (arrays["changed_mask"] == 0)).any():
            raise BadSample(
                f"{self.paths[si]}: sample {i}: corrupt (occluded differs from gt where "
                "changed_mask is 0)"
            )
        return arrays, enums

    def read(self, si: int, i: int, rng: np.random.Generator | None) -> dict[str, torch.Tensor]:
        """Sample ``i`` of shard ``si`` as tensors (augmented when ``rng`` is given).

        Raises:
            BadSample: the sample cannot be read or is corrupt.
        """
        arrays, enums = self._read_arrays(si, i)
        if self.augment is not None and rng is not None:
            arrays = augment_pair(arrays, self.size, rng, self.augment)
        out = {k: images_to_tensor(arrays[k]) for k in IMAGE_KEYS}
        if self.given_mask:
            # unaugmented (validation): a fixed jitter per sample, the same every time
            out.update(self._given(arrays, rng or np.random.default_rng([self.seed, si, i])))
        for k in MASK_KEYS:
            out[k] = torch.from_numpy(arrays[k].astype(np.float32) / 255.0)[None]
        out["landmarks"] = torch.from_numpy(
            np.ascontiguousarray(arrays["landmarks"], dtype=np.float32)
        )
        for k, v in enums.items():
            out[k] = torch.tensor(v)
        out["item"] = torch.tensor([si, i])  # (shard, index): where the sample came from
        return out

    def _given(self, arrays: dict[str, np.ndarray], rng: np.random.Generator) -> dict:
        """``given_mask`` ``[1, S, S]`` and ``prefill`` ``[3, S, S]`` of uint8 ``arrays``."""
        from deocc_core.infer.fill import prefill  # deocc_core.infer's package pulls in inference

        m = jitter_mask(arrays["occ_mask"], rng)
        if self.prefill_render:
            render, covered = arrays["render"], arrays["face_mask"] > 0
        else:  # nothing covered: Telea fills the whole mask (the render never enters)
            render = np.zeros_like(arrays["render"])
            covered = np.zeros(m.shape, bool)
        filled = prefill(arrays["occluded"], render, covered, m)
        return {"given_mask": torch.from_numpy(m)[None], "prefill": images_to_tensor(filled)}

    def __iter__(self):
        """This stream's samples of the epoch (after the batches already consumed)."""
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        role = (wid + self.skip_batches) % nw  # the old worker whose batches this one continues
        streams = self.world_size * nw
        stream = self.rank * nw + role
        done = (self.skip_batches - role + nw - 1) // nw if self.skip_batches > role else 0
        skip = done * self.batch_size
        mine = self.order()[stream::streams][skip:]
        for k, (si, i) in enumerate(mine):
            rng = (
                np.random.default_rng([self.seed, self.epoch, stream, k + skip])
                if self.augment
                else None
            )
            try:
                sample = self.read(int(si), int(i), rng)
            except BadSample as e:
                if not self.skip_bad:
                    raise
                log.warning("%s (skipped)", e)
                with self._bad.get_lock():
                    self._bad.value += 1
                continue
            yield sample

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_files"] = {}  # HDF5 handles never cross processes
        return state

    def __del__(self) -> None:
        for f in self._files.values():
            try:
                f.close()
            except Exception:  # interpreter shutdown
                pass


def _short(e: BaseException) -> str:
    """One line of an exception: its type and the first 100 characters of its message."""
    msg = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {msg[:100]}"
