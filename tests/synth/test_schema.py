"""The shard schema is the one list of keys: Sample, the writer and a real build agree with it."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np

from deocc_core.synth.schema import FIELDS, IMAGE_KEYS, KEYS, MASK_KEYS, Sample, field_shape
from deocc_core.synth.verify import shard_paths


def test_sample_fields_are_the_schema_keys():
    assert tuple(f.name for f in dataclasses.fields(Sample)) == KEYS
    assert IMAGE_KEYS == ("occluded", "render", "gt") and MASK_KEYS == (
        "face_mask",
        "occ_mask",
        "changed_mask",
    )


def test_a_built_shard_has_exactly_the_schema(tiny_shards):
    path = shard_paths(tiny_shards, "train")[0]
    with h5py.File(path, "r") as f:
        assert tuple(f.keys()) == KEYS  # written in schema order
        n, size, n_params = len(f["gt"]), int(f.attrs["resolution"]), f["params"].shape[1]
        for fl in FIELDS:
            ds = f[fl.key]
            assert ds.shape == (n, *field_shape(fl, size, n_params)), fl.key
            if fl.dtype != "str":
                assert ds.dtype == np.dtype(fl.dtype), fl.key
            else:
                assert h5py.check_string_dtype(ds.dtype) is not None, fl.key
