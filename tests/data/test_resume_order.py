"""Mid-epoch resume keeps the batch order with loader workers; corrupt samples are counted
across worker processes."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from torch.utils.data import DataLoader

from deocc_core.data.dataset import BadSample, ShardDataset


def _order(ds, workers, skip=0, batch=3):
    ds.set_epoch(1, skip, batch)
    loader = DataLoader(ds, batch_size=batch, num_workers=workers, drop_last=True)
    return [tuple(map(tuple, b["item"].tolist())) for b in loader]


@pytest.mark.filterwarnings("ignore:This DataLoader will create 3 worker")
@pytest.mark.parametrize("workers", [0, 2, 3])
def test_resume_after_any_batch_continues_the_same_order(tiny_shards, workers):
    ds = ShardDataset(tiny_shards, "train", seed=5)
    full = _order(ds, workers)
    assert len(full) >= 6
    for skip in range(1, len(full)):
        assert _order(ds, workers, skip) == full[skip:], skip


def test_skip_bad_counts_in_every_worker(tiny_shards, tmp_path):
    shards = tmp_path / "shards"
    shutil.copytree(tiny_shards, shards)
    ds = ShardDataset(shards, "train", augment=None)
    ds.set_epoch(0)
    bad = [tuple(int(v) for v in ds.order()[k]) for k in (0, 1)]  # one per loader worker
    for si, i in bad:
        with h5py.File(ds.paths[si], "r+") as f:  # occluded != gt where changed_mask is 0
            img, gt = f["occluded"][i], f["gt"][i]
            y, x = np.argwhere(f["changed_mask"][i] == 0)[0]
            img[y, x] = 255 - gt[y, x]
            f["occluded"][i] = img
    with pytest.raises(BadSample, match=rf"{ds.paths[bad[0][0]]}: sample {bad[0][1]}: corrupt"):
        ds.read(*bad[0], None)
    ds = ShardDataset(shards, "train", augment=None, skip_bad=True)
    seen = [tuple(map(tuple, b["item"].tolist())) for b in DataLoader(ds, num_workers=2)]
    assert len(seen) == len(ds) - 2 and not set(bad) & {s[0] for s in seen}
    assert ds.bad_samples == 2
