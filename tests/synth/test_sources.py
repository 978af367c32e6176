"""Face sources, alignment and identity-disjoint splits on real folders."""

from __future__ import annotations

import numpy as np
import pytest

from deocc_core.errors import ConfigError, InputError, SkipInput
from deocc_core.morphable.model import load_model
from deocc_core.synth.sources import make_source


def test_aflw_source_reads_every_annotated_image(aflw_dir):
    src = make_source("aflw2000-3d", aflw_dir)
    assert len(src.keys()) == 13
    rec = src.load(src.keys()[0])[0]
    assert (
        rec.image.dtype == np.uint8 and rec.landmarks.shape == (68, 2) and rec.yaw_deg is not None
    )


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


def test_folder_with_corrupt_truncated_and_text_files_keeps_the_good_faces(aflw_dir, tmp_path):
    import shutil

    from deocc_core.synth.sources import SkipTally, iter_faces

    for k in ("image00050", "image00081"):  # real photos with their .mat sidecars
        shutil.copy(aflw_dir / f"{k}.jpg", tmp_path / f"{k}.jpg")
        shutil.copy(aflw_dir / f"{k}.mat", tmp_path / f"{k}.mat")
    data = (aflw_dir / "image00050.jpg").read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "readme.txt").write_text("not a photo")
    shutil.copy(aflw_dir / "image00514.jpg", tmp_path / "nosidecar.jpg")  # landmarks from dlib
    shutil.copy(aflw_dir / "image00050.jpg", tmp_path / "badside.jpg")
    (tmp_path / "badside.pts").write_text("version: 1\nn_points: 2\n{\n1 2\n3 4\n}\n")
    tally = SkipTally()
    recs = list(iter_faces(make_source("folder", tmp_path), tally=tally))
    assert sorted(r.source_key for r in recs) == [
        "image00050.jpg",
        "image00081.jpg",
        "nosidecar.jpg#0",
    ]
    assert dict(tally.counts) == {
        "not an image": 1,
        "unreadable": 1,
        "truncated": 1,
        "bad annotation": 1,
    }
    with pytest.raises(InputError):
        list(iter_faces(make_source("folder", tmp_path), strict=True))


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
    a, b = (
        make_source("synthetic", model=m, n=4, size=96, seed=5).load("syn0000002")[0]
        for _ in range(2)
    )
    assert (a.image == b.image).all() and a.identity == "syn-id000000"
    assert (a.landmarks > 5).all() and (a.landmarks < 91).all()
    assert a.params is None and a.true_params is not None  # the pipeline must fit, not copy GT
    assert a.image.std() > 5 and abs(a.yaw_deg) <= 60


def test_300w_lp_layout_groups_flips_and_views_with_their_original(lp300w_dir, tmp_path):
    """300W-LP: <set>/<set>_<photo>_<face>_<view>.jpg + .mat and <set>_Flip/ with the same names;
    every view and the flipped copy of one face share an identity (so they land in one split)."""
    import shutil

    from deocc_core.synth.splits import assign_split

    jpg = next(lp300w_dir.glob("*.jpg"))
    stem = jpg.stem  # e.g. IBUG_image_008_1_0
    base = stem.rsplit("_", 1)[0]
    for folder in ("IBUG", "IBUG_Flip"):
        (tmp_path / folder).mkdir()
        for view in (0, 3):
            shutil.copy(jpg, tmp_path / folder / f"{base}_{view}.jpg")
            shutil.copy(jpg.with_suffix(".mat"), tmp_path / folder / f"{base}_{view}.mat")
    src = make_source("300w3d", tmp_path)
    assert len(src.keys()) == 4
    assert {src.identity(k) for k in src.keys()} == {base}
    assert len({assign_split(src.identity(k)) for k in src.keys()}) == 1
    rec = src.load(src.keys()[0])[0]
    assert rec.yaw_deg is not None and rec.landmarks.shape == (68, 2)


def _lp300w_tree(lp300w_dir, root):
    """The shared 300W-LP sample laid out as the real tree: the four sets and their _Flip
    copies, landmarks/ (one image annotated only there), and a Code/ folder of no inputs."""
    import shutil

    from scipy.io import loadmat, savemat

    jpg = next(lp300w_dir.glob("*.jpg"))
    rest = jpg.stem.split("_", 1)[1]  # image_008_1_0
    for s in ("AFW", "HELEN", "IBUG", "LFPW"):
        for folder in (s, f"{s}_Flip"):
            (root / folder).mkdir(parents=True)
            shutil.copy(jpg, root / folder / f"{s}_{rest}.jpg")
            shutil.copy(jpg.with_suffix(".mat"), root / folder / f"{s}_{rest}.mat")
    # a view annotated in landmarks/<set>/<stem>_pts.mat only (pts_2d is 68 x 2 there)
    only = root / "LFPW" / f"LFPW_{rest[:-1]}7.jpg"
    shutil.copy(jpg, only)
    (root / "landmarks" / "LFPW").mkdir(parents=True)
    pt2d = loadmat(jpg.with_suffix(".mat"))["pt2d"]
    savemat(root / "landmarks" / "LFPW" / f"{only.stem}_pts.mat", {"pts_2d": pt2d.T})
    (root / "Code").mkdir()
    shutil.copy(jpg, root / "Code" / "figure.jpg")  # no annotation: not an input
    return jpg, only


def test_full_300w_lp_tree_sets_flips_and_landmarks_folder(lp300w_dir, tmp_path):
    jpg, only = _lp300w_tree(lp300w_dir, tmp_path)
    src = make_source("300w3d", tmp_path)
    keys = src.keys()
    assert len(keys) == 9 and keys == sorted(keys)
    assert {k.split("/")[0] for k in keys} == {
        "AFW", "AFW_Flip", "HELEN", "HELEN_Flip", "IBUG", "IBUG_Flip", "LFPW", "LFPW_Flip"
    }  # fmt: skip
    assert src.identity("AFW/AFW_image_008_1_0.jpg") == src.identity(
        "AFW_Flip/AFW_image_008_1_0.jpg"
    )
    key = f"LFPW/{only.name}"
    rec = src.load(key)[0]  # its landmarks come from landmarks/LFPW/
    np.testing.assert_allclose(rec.landmarks, src.load("LFPW/LFPW_image_008_1_0.jpg")[0].landmarks)
    assert rec.params is None  # no model given: the build will fit


def test_dataset_params_only_for_3ddfa_bfm(lp300w_dir, ddfa_dir, sfm_dir, tmp_path):
    _lp300w_tree(lp300w_dir, tmp_path)
    key = "IBUG/IBUG_image_008_1_0.jpg"
    bfm = load_model(ddfa_dir)
    rec = make_source("300w3d", tmp_path, model=bfm).load(key)[0]
    assert rec.params is not None and abs(np.degrees(rec.params.pose.yaw) - rec.yaw_deg) < 3
    off = make_source("300w3d", tmp_path, model=bfm, dataset_params=False).load(key)[0]
    sfm = make_source("300w3d", tmp_path, model=load_model(sfm_dir)).load(key)[0]
    assert off.params is None and sfm.params is None
