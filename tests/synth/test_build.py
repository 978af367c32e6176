"""Shards and the build: round trip, atomicity, determinism, resume, ranks, verify, real sources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from deocc_core.errors import ConfigError, FormatError
from deocc_core.synth.manifest import merge_folders, read_manifest
from deocc_core.synth.pipeline import COPY_NO_OCCLUDER, COPY_REASONS, BuildConfig, build
from deocc_core.synth.schema import Sample
from deocc_core.synth.shards import ShardReader, ShardWriter, content_sha256
from deocc_core.synth.verify import verify_shards

ROOT = Path(__file__).resolve().parents[2]


def _sample(rng, s=16, p=7):
    u8 = lambda *sh: rng.integers(0, 256, sh, dtype=np.uint8)  # noqa: E731
    return Sample(
        u8(s, s, 3),
        u8(s, s, 3),
        u8(s, s, 3),
        u8(s, s),
        u8(s, s),
        u8(s, s),
        rng.random((68, 2)).astype(np.float32),
        rng.random(p).astype(np.float32),
        3,
        1,
        "person 7",
        "a/b.jpg#0",
    )


def test_round_trip_of_every_field(tmp_path):
    rng = np.random.default_rng(0)
    samples = [_sample(rng) for _ in range(3)]
    with ShardWriter(tmp_path / "train-00000.h5", 16, 7, 10, {"split": "train"}) as w:
        for s in samples:
            w.add(s)
    with ShardReader(tmp_path / "train-00000.h5") as r:
        assert len(r) == 3 and r.attrs["split"] == "train" and r.resolution == 16
        for i, s in enumerate(samples):
            got = r.sample(i)
            for k, v in s.__dict__.items():
                assert np.array_equal(np.asarray(getattr(got, k)), np.asarray(v)), k


def test_writer_is_atomic(tmp_path):
    path = tmp_path / "train-00000.h5"
    with pytest.raises(RuntimeError):
        with ShardWriter(path, 16, 7, 4) as w:
            w.add(_sample(np.random.default_rng(0)))
            raise RuntimeError("worker died")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "junk.h5").write_bytes(b"\x89HDF junk")
    with pytest.raises(FormatError, match="junk.h5"):
        ShardReader(tmp_path / "junk.h5")


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: content_sha256(p) for p in sorted(folder.glob("*.h5"))}


def test_build_is_deterministic_verifiable_and_guarded(tiny_shards, tmp_path):
    cfg = BuildConfig(
        source="synthetic",
        out=str(tmp_path / "again"),
        size=64,
        per_shard=12,
        n_synthetic=48,
        test_fraction=0.25,
        fit_landmarks="annotated",
        seed=0,
    )
    build(cfg)
    assert _hashes(tiny_shards) == _hashes(tmp_path / "again")
    m = read_manifest(tiny_shards)
    assert m["complete"] and sum(s["samples"] for s in m["splits"].values()) == 48
    assert verify_shards(tiny_shards) == []
    with pytest.raises(ConfigError, match="different build config"):
        build(BuildConfig(**{**cfg.__dict__, "seed": 1}))
    again = build(cfg)  # resume: nothing left to do
    assert again.written == [] and len(again.skipped_existing) == len(m["shards"])


def test_worker_pool_writes_the_same_shards_and_reports_stages(tmp_path):
    # landmarks from the source (the detector's XNNPACK floats may differ between processes)
    base = dict(
        source="synthetic",
        size=64,
        per_shard=3,
        n_synthetic=12,  # 4 shards: both pool workers write some
        test_fraction=0.25,
        seed=0,
        fit_landmarks="annotated",
    )
    build(BuildConfig(**base, out=str(tmp_path / "one")))
    seen = []

    def progress(n=1, total=None):
        seen.append((n, total))

    r = build(BuildConfig(**base, out=str(tmp_path / "pool"), workers=2), progress)
    assert _hashes(tmp_path / "pool") == _hashes(tmp_path / "one")
    assert seen[0] == (0, 12) and sum(n for n, t in seen if t is None) == 12
    stages = r.stage_seconds
    for name in ("synthetic face", "align", "fit", "render", "light", "occlude", "write"):
        assert stages[name] > 0, name
    assert "decode" not in stages


def test_verify_catches_corruption_and_shared_identities(tiny_shards, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_shards, bad)
    shard = sorted(bad.glob("train-*.h5"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    problems = verify_shards(bad)
    assert any("sha256 mismatch" in p for p in problems)


def test_ranks_cover_every_shard_once_and_merge(tiny_shards, tmp_path):
    base = dict(
        source="synthetic",
        size=64,
        per_shard=12,
        n_synthetic=48,
        test_fraction=0.25,
        seed=0,
        fit_landmarks="annotated",
    )
    for r in (0, 1):
        build(BuildConfig(**base, out=str(tmp_path / f"rank{r}"), rank=r, world_size=2))
    r0, r1 = _hashes(tmp_path / "rank0"), _hashes(tmp_path / "rank1")
    assert not set(r0) & set(r1)
    merged = merge_folders([tmp_path / "rank0", tmp_path / "rank1"], tmp_path / "merged")
    assert merged["complete"] and _hashes(tmp_path / "merged") == _hashes(tiny_shards)


def test_killed_build_resumes_to_the_same_shards(tmp_path):
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "tools.synth_occ",
        "build",
        "--source",
        "synthetic",
        "--out",
        str(out),
        "--size",
        "64",
        "--per-shard",
        "6",
        "--n-synthetic",
        "60",
        "--workers",
        "1",
        "--seed",
        "3",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(out.glob("*-*.json")))
    # the rerun and the uninterrupted reference in this process: the same config the CLI
    # builds from the command line (a second child only added start-up)
    cfg = dict(source="synthetic", size=64, per_shard=6, n_synthetic=60, workers=1, seed=3)
    build(BuildConfig(out=str(out), **cfg))
    full = tmp_path / "full"
    build(BuildConfig(out=str(full), **cfg))
    assert done_before >= 1 and _hashes(out) == _hashes(full)
    assert not list(out.glob("*.partial"))


def test_build_from_real_aflw_photos(aflw_dir, tmp_path):
    r = build(
        BuildConfig(
            source="aflw2000-3d",
            root=str(aflw_dir),
            out=str(tmp_path),
            size=64,
            per_shard=32,
            per_face=2,
            test_fraction=0.3,
            max_yaw=60,
        )
    )
    total = sum(r.samples.values())
    assert (
        total >= 16 and r.skipped_inputs.get("yaw beyond --max-yaw", 0) >= 1
    )  # 3 of 13 faces are turned > 60°
    shard = sorted(tmp_path.glob("*.h5"))[0]
    with ShardReader(shard) as rd:
        s = rd.sample(0)
        inner = np.round(s.landmarks[17:]).astype(int).clip(0, 63)
        assert (
            s.face_mask[inner[:, 1], inner[:, 0]] == 255
        ).mean() > 0.9  # the fitted render covers the face
        assert (s.occ_mask > 0).any() and not np.array_equal(s.occluded, s.gt)
        assert json.loads(rd.attrs["config"])["source"] == "aflw2000-3d"


def test_300w_lp_build_renders_the_dataset_parameters(
    lp300w_dir, ddfa_dir, sfm_dir, tmp_path, caplog
):
    """With 3DDFA's BFM the build renders each .mat's own fit (and says so); --limit trims."""
    import logging

    from deocc_core.face.align import crop_matrix
    from deocc_core.face.prepare import params_to_crop
    from deocc_core.landmarks.readers import read_mat_annotation
    from deocc_core.morphable.ddfa import params_from_ddfa
    from deocc_core.morphable.model import load_model
    from deocc_core.morphable.params import pack_params
    from tests.synth.test_sources import _lp300w_tree

    tree = tmp_path / "300W_LP"
    jpg, _ = _lp300w_tree(lp300w_dir, tree)
    base = dict(
        source="300w3d",
        root=str(tree),
        size=64,
        per_shard=8,
        test_fraction=0.0,
        limit=3,
        fit_landmarks="annotated",  # the render from the parameters themselves
    )
    with caplog.at_level(logging.INFO, logger="deocc_core.synth.pipeline"):
        r = build(BuildConfig(**base, out=str(tmp_path / "bfm"), model=str(ddfa_dir)))
    assert "the dataset's own" in caplog.text and sum(r.samples.values()) == 3
    with ShardReader(next((tmp_path / "bfm").glob("train-*.h5"))) as sh:
        s = sh.sample(0)
    ann = read_mat_annotation(jpg.with_suffix(".mat"))
    bfm = load_model(ddfa_dir)
    p = params_from_ddfa(bfm, ann.shape_para, ann.exp_para, ann.pose_para, 450)
    want = pack_params(params_to_crop(p, crop_matrix(ann.landmarks, 64)))
    np.testing.assert_allclose(s.params, want, rtol=1e-5, atol=1e-4)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="deocc_core.synth.pipeline"):
        build(BuildConfig(**base, out=str(tmp_path / "sfm"), model=str(sfm_dir)))
        build(
            BuildConfig(
                **base, out=str(tmp_path / "off"), model=str(ddfa_dir), dataset_params=False
            )
        )
    assert "fitted to the landmarks (model sfm" in caplog.text
    assert "fitted to the landmarks (--no-dataset-params)" in caplog.text


def test_a_copy_without_an_occluder_is_never_written(shared_data, tmp_path):
    # held-out sets take only real cut-outs (--asset-share 1); a thin frame's warp often
    # fails on every try, which used to write the clean face as an "occluded" sample
    faces = tmp_path / "faces"
    faces.mkdir()
    src = shared_data / "faces_bulk" / "face_mask_detection" / "without_mask"
    for p in sorted(src.glob("*.jpg"))[:3]:
        (faces / p.name).symlink_to(p)
    cfg = BuildConfig(
        source="folder",
        root=str(faces),
        out=str(tmp_path / "out"),
        size=64,
        per_face=2,
        per_shard=16,
        occluders=("eyeglasses",),
        asset_share=1.0,
        occluder_assets=str(shared_data / "occluders"),
        test_fraction=0.0,
        max_padding=1.0,
    )
    r = build(cfg)
    assert sum(r.samples.values()) > 0
    assert r.skipped_inputs[COPY_NO_OCCLUDER] > 0, r.skipped_inputs
    made = sum(r.samples.values())
    assert made + sum(r.skipped_inputs[k] for k in COPY_REASONS) == 3 * 2  # each copy once
    for shard in sorted((tmp_path / "out").glob("*.h5")):
        with ShardReader(shard) as rd:
            assert all((rd.sample(i).occ_mask > 0).any() for i in range(len(rd)))
