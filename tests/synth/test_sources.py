"""Face sources, alignment and identity-disjoint splits on real folders."""
from __future__ import annotations

import numpy as np
import pytest

from deocc_core.errors import ConfigError, InputError
from deocc_core.morphable.model import load_model
from deocc_core.synth.align import align_face, transform_points
from deocc_core.synth.sources import SkipInput, make_source
from deocc_core.synth.splits import assign_split


def test_aflw_source_reads_every_annotated_image(aflw_dir):
    src = make_source("aflw2000-3d", aflw_dir)
    assert len(src.keys()) == 13
    rec = src.load(src.keys()[0])[0]
    assert rec.image.dtype == np.uint8 and rec.landmarks.shape == (68, 2) and rec.yaw_deg is not None


def test_300w_lp_identity_groups_views(lp300w_dir):
    src = make_source("300w3d", lp300w_dir)
    key = src.keys()[0]
    assert src.identity(key) == key.rsplit("_", 1)[0].rsplit(".", 1)[0]


def test_folder_source_detects_and_reads_identities(faces_bulk_dir):
    src = make_source("folder", faces_bulk_dir)
    keys = src.keys()
    assert len(keys) >= 60
    idents = {src.identity(k) for k in keys}
    assert 9 < len(idents) < len(keys)  # identities.tsv groups the known people
    rec = src.load(next(k for k in keys if k.startswith("img1")))
    assert rec[0].landmarks.shape == (68, 2)


def test_unreadable_image_is_skipped_with_a_reason(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    src = make_source("folder", tmp_path)
    with pytest.raises(SkipInput) as e:
        src.load("broken.jpg")
    assert e.value.reason == "unreadable"


def test_source_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        make_source("folder", tmp_path / "nope")
    with pytest.raises(InputError, match="no annotated images"):
        make_source("aflw2000-3d", tmp_path)
    with pytest.raises(ConfigError, match="unknown source"):
        make_source("celeba", tmp_path)


def test_synthetic_source_is_deterministic_and_centred():
    m = load_model("starter")
    a, b = (make_source("synthetic", model=m, n=4, size=96, seed=5).load("syn0000002")[0] for _ in range(2))
    assert (a.image == b.image).all() and a.identity == "syn-id000000"
    assert (a.landmarks > 5).all() and (a.landmarks < 91).all()


def test_alignment_maps_landmarks_and_inverts(aflw_dir):
    src = make_source("aflw2000-3d", aflw_dir)
    rec = src.load(src.keys()[0])[0]
    al = align_face(rec.image, rec.landmarks, 128)
    assert (al.landmarks > 0).all() and (al.landmarks < 128).all()
    np.testing.assert_allclose(transform_points(al.landmarks, al.inverse), rec.landmarks, atol=1e-3)
    eyes = al.landmarks[42:48].mean(0) - al.landmarks[36:42].mean(0)
    assert abs(eyes[1]) < 1e-3 * 128  # eyes level after alignment


def test_splits_are_identity_disjoint_and_stable():
    ids = [f"person{i}" for i in range(400)]
    split = {i: assign_split(i, test_fraction=0.2) for i in ids}
    assert split == {i: assign_split(i, test_fraction=0.2) for i in ids}
    assert 50 < sum(s == "test" for s in split.values()) < 110
    assert assign_split("x", salt="a") == assign_split("x", salt="a")


def test_split_lists_round_trip_and_detect_edits(tmp_path):
    from deocc_core.synth.splits import read_split_list, write_split_lists

    keys = [(f"img{i}.jpg", f"person{i % 7}") for i in range(40)]
    paths = write_split_lists(tmp_path / "ds", keys, test_fraction=0.3)
    train, test = read_split_list(paths["train"]), read_split_list(paths["test"])
    assert len(train) + len(test) == 40 and not {i for _, i in train} & {i for _, i in test}
    paths["test"].write_text(paths["test"].read_text().replace("person", "persom", 1))
    with pytest.raises(ValueError, match="checksum"):
        read_split_list(paths["test"])


def test_committed_split_lists_are_intact():
    from pathlib import Path

    from deocc_core.synth.splits import read_split_list

    lists = sorted((Path(__file__).resolve().parents[2] / "data_manifests").glob("*.txt"))
    assert lists and all(read_split_list(p) for p in lists)
