"""Shard reader validation and batch reads (round trip / atomicity: test_build.py)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from deocc_core.errors import FormatError, InputError
from deocc_core.synth.schema import FORMAT_VERSION, KEYS, Sample
from deocc_core.synth.shards import ShardReader, ShardWriter


def _write(path, n=4, s=8, p=5):
    rng = np.random.default_rng(1)
    u8 = lambda *sh: rng.integers(0, 256, sh, dtype=np.uint8)  # noqa: E731
    with ShardWriter(path, s, p, n + 2, {"split": "test", "shard_index": 3}) as w:
        for i in range(n):
            w.add(
                Sample(
                    u8(s, s, 3),
                    u8(s, s, 3),
                    u8(s, s, 3),
                    u8(s, s),
                    u8(s, s),
                    u8(s, s),
                    rng.random((68, 2)).astype(np.float32),
                    rng.random(p).astype(np.float32),
                    i % 3,
                    i % 2,
                    f"id{i}",
                    f"k/{i}.jpg#0",
                )
            )
    return path


def test_batch_matches_per_sample_reads_and_shrinks_to_count(tmp_path):
    with ShardReader(_write(tmp_path / "test-00003.h5")) as r:
        assert (
            len(r) == 4
            and r.attrs["format_version"] == FORMAT_VERSION
            and r.attrs["shard_index"] == 3
        )
        b = r.batch(1, 4)
        for j, i in enumerate(range(1, 4)):
            s = r.sample(i)
            for k in KEYS:
                assert np.array_equal(np.asarray(b[k][j]), np.asarray(getattr(s, k))), k


def test_reader_rejects_other_versions_missing_keys_and_files(tmp_path):
    p = _write(tmp_path / "train-00000.h5")
    with h5py.File(p, "a") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(FormatError, match=r"train-00000.h5: shard format version"):
        ShardReader(p)
    q = _write(tmp_path / "train-00001.h5")
    with h5py.File(q, "a") as f:
        del f["params"]
    with pytest.raises(FormatError, match=r"train-00001.h5: shard lacks datasets params"):
        ShardReader(q)
    with pytest.raises(InputError, match="nope.h5"):
        ShardReader(tmp_path / "nope.h5")


def test_writer_refuses_wrong_shapes_and_overflow(tmp_path):
    p = tmp_path / "train-00000.h5"
    z = lambda *s: np.zeros(s, np.uint8)  # noqa: E731
    good = Sample(
        z(8, 8, 3),
        z(8, 8, 3),
        z(8, 8, 3),
        z(8, 8),
        z(8, 8),
        z(8, 8),
        np.zeros((68, 2), np.float32),
        np.zeros(5, np.float32),
        0,
        0,
        "a",
        "b",
    )
    with pytest.raises(FormatError, match="face_mask"):
        with ShardWriter(p, 8, 5, 2) as w:
            w.add(Sample(**{**good.__dict__, "face_mask": z(8, 9)}))
    assert not p.exists() and not list(tmp_path.iterdir())
    with pytest.raises(FormatError, match="shard full"):
        with ShardWriter(p, 8, 5, 1) as w:
            w.add(good)
            w.add(good)
    assert not list(tmp_path.iterdir())


def test_verify_reports_wrong_dtype_after_rehash(tiny_shards, tmp_path):
    import json
    import shutil

    from deocc_core.synth.manifest import collect_manifest
    from deocc_core.synth.shards import file_sha256
    from deocc_core.synth.verify import verify_shards

    bad = tmp_path / "bad"
    shutil.copytree(tiny_shards, bad)
    shard = sorted(bad.glob("test-*.h5"))[0]
    with h5py.File(shard, "a") as f:
        lm = f["landmarks"][:]
        del f["landmarks"]
        f.create_dataset("landmarks", data=lm.astype(np.float64))
    side = shard.with_suffix(".json")  # a consistent checksum: only the dtype check can catch it
    info = json.loads(side.read_text())
    info["sha256"] = file_sha256(shard)
    side.write_text(json.dumps(info))
    collect_manifest(
        bad, expected=json.loads((tiny_shards / "manifest.json").read_text())["planned_shards"]
    )
    problems = verify_shards(bad)
    assert problems == [f"{shard}: landmarks has dtype float64, expected float32"]
