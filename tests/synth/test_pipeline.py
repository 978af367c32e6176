"""Build pipeline guards: ranks sharing one folder, unwritable output, bad rank."""

from __future__ import annotations

import numpy as np
import pytest

from deocc_core.errors import ConfigError
from deocc_core.synth.manifest import read_manifest
from deocc_core.synth.pipeline import BuildConfig, build
from deocc_core.synth.shards import content_sha256

BASE = dict(
    source="synthetic",
    size=64,
    per_shard=12,
    n_synthetic=48,
    test_fraction=0.25,
    seed=0,
    fit_landmarks="annotated",
)


def test_ranks_building_into_one_folder_complete_it(tiny_shards, tmp_path):
    out = tmp_path / "shared"
    first = build(BuildConfig(**BASE, out=str(out), rank=1, world_size=2))
    assert first.written and not first.manifest["complete"]
    (out / "train-00000.h5.partial").write_bytes(b"left by a killed rank 0")
    second = build(BuildConfig(**BASE, out=str(out), rank=0, world_size=2))
    assert second.manifest["complete"] and not list(out.glob("*partial"))
    want = {p.name: content_sha256(p) for p in tiny_shards.glob("*.h5")}
    assert {p.name: content_sha256(p) for p in out.glob("*.h5")} == want
    assert read_manifest(out)["planned_shards"] == len(want)


def test_unwritable_output_and_bad_rank_are_one_line_errors(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=r"a_file/shards: shard folder is not writable"):
        build(BuildConfig(**BASE, out=str(blocker / "shards")))
    with pytest.raises(ConfigError, match="rank 2 outside world size 2"):
        build(BuildConfig(**BASE, out=str(tmp_path / "o"), rank=2, world_size=2))


def test_wrong_root_layout_fails_before_writing_any_shard(tmp_path):
    from deocc_core.errors import InputError

    root = tmp_path / "not_aflw"
    root.mkdir()
    (root / "image00002.mat").write_bytes(b"not a mat file")
    (root / "image00002.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    with pytest.raises(InputError, match="aflw2000-3d"):
        build(BuildConfig(source="aflw2000-3d", root=str(root), out=str(out), size=64))
    assert not list(out.glob("*.h5"))


def test_test_count_holds_out_whole_identities(tmp_path):
    r = build(
        BuildConfig(**{**BASE, "test_fraction": 0.0}, out=str(tmp_path / "tc"), test_count=10)
    )
    m = r.manifest["splits"]
    assert m["test"]["samples"] >= 10 and m["train"]["samples"] + m["test"]["samples"] == 48
    assert m["test"]["identities"] >= 1 and m["train"]["identities"] >= 1
    from deocc_core.synth.verify import verify_shards

    assert verify_shards(tmp_path / "tc") == []


def test_synthetic_faces_with_a_shape_only_model(sfm_dir, tmp_path):
    """The real Surrey SFM (no albedo) fits and renders; the starter model supplies the faces."""
    from deocc_core.synth.shards import ShardReader

    r = build(
        BuildConfig(
            source="synthetic",
            out=str(tmp_path),
            size=64,
            per_shard=8,
            n_synthetic=6,
            model=str(sfm_dir / "sfm_shape_3448.bin"),
            fit_landmarks="annotated",
        )
    )
    assert sum(r.samples.values()) >= 4 and r.manifest["model"]["name"] == "sfm_shape_3448"
    with ShardReader(sorted(tmp_path.glob("*.h5"))[0]) as rd:
        s = rd.sample(0)
        assert rd.attrs["model_name"] == "sfm_shape_3448" and (s.face_mask == 255).mean() > 0.1


def test_train_like_you_test_fits_the_render_to_landmarks_found_on_the_composite(tmp_path):
    """--fit-landmarks detected: each copy's render is fitted to what the detector finds on
    the occluded composite (as deocc-infer does), so it differs from the annotated fit; the
    crop and ground truth stay the same.
    """
    from deocc_core.synth.shards import ShardReader

    kw = dict(source="synthetic", size=128, per_shard=16, n_synthetic=8, seed=2, test_fraction=0)
    det = build(BuildConfig(**kw, out=str(tmp_path / "det")))
    ann = build(BuildConfig(**kw, out=str(tmp_path / "ann"), fit_landmarks="annotated"))
    assert sum(ann.samples.values()) == 8 and 1 <= sum(det.samples.values()) <= 8
    with ShardReader(sorted((tmp_path / "det").glob("*.h5"))[0]) as d:
        with ShardReader(sorted((tmp_path / "ann").glob("*.h5"))[0]) as a:
            by_key = {a.sample(i).source_key: a.sample(i) for i in range(len(a))}
            for i in range(len(d)):
                sd = d.sample(i)
                sa = by_key[sd.source_key]
                assert np.array_equal(sd.gt, sa.gt) and np.array_equal(sd.landmarks, sa.landmarks)
                assert not np.array_equal(sd.params, sa.params)
