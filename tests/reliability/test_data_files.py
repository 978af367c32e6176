"""Damaged or crafted data files: shards with flipped bytes, broken manifests and sidecars,
names in data that point outside the dataset folder. One line naming the file, never a
traceback; nothing read or written outside the folder."""

from __future__ import annotations

import json
import shutil

import pytest
from _rel import BUILD_ARGS, flip_chunk, synth

from deocc_core.errors import BadSample, FormatError
from deocc_core.synth.manifest import read_manifest
from deocc_core.synth.shards import ShardReader
from deocc_core.synth.verify import shard_paths, verify_shards


def _first_shard(folder):
    return sorted(folder.glob("train-*.h5"))[0]


def test_flipped_bytes_are_named_by_shard_and_sample(shards):
    p = _first_shard(shards)
    flip_chunk(p, "occluded", 1)
    r = synth("verify", shards)
    r.one_line(1, "1 problem")
    assert f"{p.name}: sha256 mismatch" in r.stdout, r
    r = synth("verify", shards, "--deep", "--no-checksums")
    r.one_line(1, "problem")
    assert f"{p.name}: sample 1: " in r.stdout, r  # unreadable, or decoded to wrong pixels
    r = synth("inspect", shards, "--grid", shards.parent / "grid.png", "--n", "64")
    r.one_line(1, p.name, "sample ")
    assert not (shards.parent / "grid.png").exists()


def test_reader_raises_one_typed_error(shards):
    p = _first_shard(shards)
    flip_chunk(p, "gt", 0)
    with ShardReader(p) as r:
        bad = []
        for i in range(len(r)):
            try:
                r.sample(i, check=True)
            except BadSample as e:
                bad.append(str(e))
    assert bad and bad[0].startswith(f"{p}: sample 0: "), bad
    assert len(bad[0].splitlines()) == 1


def test_verify_deep_checks_the_gt_invariant(shards):
    """occluded == gt wherever changed_mask is 0: an edit that keeps the file readable."""
    import h5py

    p = _first_shard(shards)
    with h5py.File(p, "r+") as f:
        ch = f["changed_mask"][0]
        y, x = (ch == 0).nonzero()
        occ = f["occluded"][0]
        occ[y[0], x[0]] ^= 0x40
        f["occluded"][0] = occ
    r = synth("verify", shards, "--deep", "--no-checksums")
    assert r.code == 1, r
    assert f"{p.name}: sample 0: occluded differs from gt outside changed_mask" in r.stdout, r
    assert synth("verify", shards, "--deep").code == 1  # and the checksum sees it


def test_healthy_dataset_passes_deep_verify(built):
    r = synth("verify", built, "--deep")
    assert r.code == 0 and "every sample read" in r.stdout, r


@pytest.mark.parametrize("content", ["", "{", '{"shards": "x"}', "[]", '{"shards": [{}]}'])
def test_broken_manifest(shards, content):
    (shards / "manifest.json").write_text(content)
    for args in (("verify", shards), ("inspect", shards)):
        synth(*args).one_line(1, "manifest.json")
    with pytest.raises(FormatError, match="manifest.json"):
        read_manifest(shards)  # what deocc-train / deocc-eval read


def test_build_rerun_repairs_a_broken_manifest(shards):
    (shards / "manifest.json").write_text("")
    r = synth("build", *BUILD_ARGS, "--out", shards, "--workers", "1")
    assert r.code == 0 and "already done" in r.stdout, r
    assert synth("verify", shards).code == 0


@pytest.mark.parametrize("content", ["", "{bad", '{"split": "train"}'])
def test_broken_sidecar(shards, tmp_path, content):
    side = sorted(shards.glob("train-*.json"))[0]
    side.write_text(content)
    synth("merge", shards, "--out", tmp_path / "merged").one_line(1, side.name)
    # a build rerun treats the shard as unfinished and writes it again
    r = synth("build", *BUILD_ARGS, "--out", shards, "--workers", "1")
    assert r.code == 0 and "1 written" in r.stdout, r
    assert synth("verify", shards).code == 0


@pytest.mark.parametrize("name", ["../outside.h5", "/etc/passwd", "sub/x.h5", "..", ".hidden.h5"])
def test_manifest_file_entries_stay_in_the_folder(shards, name):
    outside = shards.parent / "outside.h5"
    shutil.copy(_first_shard(shards), outside)  # a valid shard a crafted entry points at
    m = json.loads((shards / "manifest.json").read_text())
    m["shards"][0]["file"] = name
    (shards / "manifest.json").write_text(json.dumps(m))
    for args in (("verify", shards), ("inspect", shards, "--grid", shards.parent / "g.png")):
        synth(*args).one_line(1, "manifest.json", "not a plain file name")
    with pytest.raises(FormatError):
        shard_paths(shards)


@pytest.mark.parametrize("split", ["../../evil", "/tmp/evil", "train/../x"])
def test_sidecar_split_cannot_leave_the_merge_target(shards, tmp_path, split):
    side = sorted(shards.glob("train-*.json"))[0]
    info = json.loads(side.read_text())
    info["split"] = split
    side.write_text(json.dumps(info))
    out = tmp_path / "deep" / "merged"
    synth("merge", shards, "--out", out).one_line(1, side.name, "split")
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - set(shards.rglob("*"))
    assert all(out in p.parents for p in written), written
    assert not list(tmp_path.glob("evil*")) and not list(tmp_path.parent.glob("evil*"))


def test_verify_on_an_unfinished_build(shards):
    """A killed build leaves no manifest: verify says how far it got and how to resume."""
    (shards / "manifest.json").unlink()
    for p in sorted(shards.glob("test-*"))[:2]:
        p.unlink()
    (shards / "train-00001.h5.partial").write_bytes(b"\0" * 100)
    r = synth("verify", shards)
    line = r.one_line(1, "build unfinished", "rerun the same synth-occ build command")
    n_done = len(list(shards.glob("*.h5")))
    assert f"{n_done} shard(s) complete" in line and "planned" in line, line
    assert "1 partial file" in line
    r = synth("build", *BUILD_ARGS, "--out", shards, "--workers", "1")
    assert r.code == 0, r
    assert not list(shards.glob("*.partial"))
    assert synth("verify", shards).code == 0


def test_verify_sees_shards_missing_from_the_manifest(shards):
    """A 0-byte shard (an interrupted copy) is not silently skipped."""
    (shards / "test-00007.h5").write_bytes(b"")
    r = synth("verify", shards)
    assert r.code == 1 and "test-00007.h5: shard file not in the manifest" in r.stdout, r
    assert verify_shards(shards)  # the library reports it too


def test_eval_refuses_a_shard_with_one_flipped_bit(shards, tmp_path):
    """deocc-eval checks each shard's sha256 from the manifest before it scores anything."""
    from deocc_core.eval.evaluate import EvalConfig, evaluate

    out = tmp_path / "e"
    cfg = EvalConfig(shards=str(shards), split="test", baselines=("telea",), out=str(out))
    p = sorted(shards.glob("test-*.h5"))[0]
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, in the middle of the samples
    p.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="sha256 mismatch") as e:
        evaluate(cfg)
    assert str(p) in str(e.value) and "\n" not in str(e.value)
    assert not (out / "results.json").exists()
