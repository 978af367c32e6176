"""Paired augmentation on real synthesized shards: landmarks move and mirror with the pixels."""

from __future__ import annotations

import numpy as np
import torch

from deocc_core.data import AugmentConfig, ShardDataset, augment_pair
from deocc_core.landmarks.ibug import ibug_scheme
from deocc_core.landmarks.parts import point
from deocc_core.synth.shards import ShardReader
from deocc_core.synth.verify import shard_paths


def _sample(tiny_shards):
    with ShardReader(shard_paths(tiny_shards, "train")[0]) as r:
        return {
            k: r.arrays(k)[0]
            for k in ("occluded", "render", "gt", "face_mask", "occ_mask", "landmarks")
        }


def test_flip_mirrors_landmarks_and_keeps_them_on_the_face(tiny_shards):
    s = _sample(tiny_shards)
    size = s["gt"].shape[0]
    out = augment_pair(s, size, np.random.default_rng(0), AugmentConfig(scale=1.0, flip=True))
    flipped = not np.array_equal(out["gt"], s["gt"])
    rng = 0
    while not flipped:  # draw until the coin says flip
        rng += 1
        out = augment_pair(s, size, np.random.default_rng(rng), AugmentConfig(scale=1.0, flip=True))
        flipped = not np.array_equal(out["gt"], s["gt"])
    np.testing.assert_array_equal(out["face_mask"], s["face_mask"][:, ::-1])
    lm = out["landmarks"]
    # the right eye's outer corner after the flip is the old left eye's outer corner, mirrored
    eye_r, eye_l = point("eye_right_outer"), point("eye_left_outer")
    assert ibug_scheme().mirror[eye_r] == eye_l
    np.testing.assert_allclose(lm[eye_r, 0], size - 1 - s["landmarks"][eye_l, 0], atol=1e-4)
    # subject's right side stays at image-left, as in the input
    jaw_r, jaw_l = point("jaw_right_end"), point("jaw_left_end")
    assert (lm[jaw_r, 0] < lm[jaw_l, 0]) == (s["landmarks"][jaw_r, 0] < s["landmarks"][jaw_l, 0])
    # landmarks stay on the face silhouette after the joint transform
    xi, yi = np.clip(np.round(lm).astype(int), 0, size - 1).T
    assert (out["face_mask"][yi, xi] > 0).mean() > 0.9


def test_resize_crop_moves_landmarks_with_the_mask(tiny_shards):
    s = _sample(tiny_shards)
    size = s["gt"].shape[0]
    for seed in range(4):
        out = augment_pair(
            s, size, np.random.default_rng(seed), AugmentConfig(scale=1.25, flip=True)
        )
        assert out["gt"].shape == s["gt"].shape and out["landmarks"].dtype == np.float32
        # centroid of the landmarks follows the centroid of the silhouette
        ys, xs = np.nonzero(s["face_mask"])
        ys2, xs2 = np.nonzero(out["face_mask"])
        shift_mask = np.array([xs2.mean() - xs.mean() * 1.0, ys2.mean() - ys.mean()])
        shift_lm = out["landmarks"].mean(0) - s["landmarks"].mean(0)
        # both shifts include the same 1.25x scale about the origin; compare at the mean point
        assert np.abs(shift_mask - shift_lm).max() < 0.25 * size


def test_dataset_yields_minus_one_to_one_chw_and_landmarks(tiny_shards):
    ds = ShardDataset(tiny_shards, "train", seed=3)
    b = next(iter(ds))
    for k in ("occluded", "render", "gt"):
        assert b[k].dtype == torch.float32 and b[k].shape == (3, ds.size, ds.size)
        assert -1.0 <= float(b[k].min()) and float(b[k].max()) <= 1.0
    assert b["face_mask"].shape == (1, ds.size, ds.size) and b["landmarks"].shape == (68, 2)
    # the same (epoch, position) draws the same jitter: augmentation is reproducible
    ds.set_epoch(0)
    again = next(iter(ds))
    assert torch.equal(b["gt"], again["gt"]) and torch.equal(b["landmarks"], again["landmarks"])
