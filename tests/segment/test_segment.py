"""Segmenter data and training: real crops, synthetic occlusions, exact resume, held-out packs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deocc_core.face.align import align_face
from deocc_core.imageio import read_image
from deocc_core.landmarks.readers import read_pts
from deocc_core.segment.faces import (
    GLASSES_CLASS,
    FaceCrops,
    collect_photos,
    crop_faces,
    load_face_crops,
    save_face_crops,
)
from deocc_core.segment.occlude import OcclusionConfig, occlude_crop
from deocc_core.segment.train import SegTrainConfig, make_batch, train_segmenter


@pytest.fixture(scope="module")
def real_crop(ibug_pts_image):
    img_path, pts = ibug_pts_image
    al = align_face(read_image(img_path), read_pts(pts), 64)
    return al.image, al.landmarks


def test_occlusions_change_the_pixels_they_mark_and_clean_crops_stay_clean(real_crop):
    img, lm = real_crop
    donors, marked = img[None], 0
    for seed in range(12):
        occ, t = occlude_crop(
            img, lm, np.random.default_rng(seed), donors, OcclusionConfig(clean=0)
        )
        assert occ.shape == img.shape and occ.dtype == np.uint8 and set(np.unique(t)) <= {0, 1}
        if not t.any():  # a thin band or a faint object can stay under alpha 0.5 at 64 px
            continue
        marked += 1
        diff = np.abs(occ.astype(int) - img.astype(int)).max(2)
        # the photo-level jitter moves every pixel a little; the object moves its own more
        assert diff[t > 0].mean() > diff[t == 0].mean()
    assert marked >= 9
    occ, t = occlude_crop(img, lm, np.random.default_rng(0), donors, OcclusionConfig(clean=1))
    assert not t.any()


def test_a_real_glasses_wearer_is_held_out_with_its_labels(shared_data):
    from deocc_core.landmarks.find import LazyDetector

    celeb = shared_data / "faces_bulk" / "celebamask_hq"
    if not celeb.is_dir():
        pytest.skip("CelebAMask-HQ subset absent from ../shared/data")
    stem = "01a16a82ec1c42cab59a4dda09aab006"
    photos = [
        ("celebamask_hq", celeb / "images" / f"{stem}.jpg", stem, celeb / "masks" / f"{stem}.png")
    ]
    (row,) = list(crop_faces(photos, LazyDetector(), 64))
    assert row["split"] == "glasses"
    lab, lm = row["labels"], row["landmarks"]
    eyes = np.round(lm[36:48]).astype(int)
    # the class ids (not palette colours) survive the warp: glasses around the eyes
    assert (lab == GLASSES_CLASS).sum() > 50
    assert np.isin(lab[eyes[:, 1], eyes[:, 0]], [GLASSES_CLASS, 4, 5]).mean() > 0.8


def test_every_clean_photo_folder_is_collected_with_identities(shared_data):
    bulk = shared_data / "faces_bulk"
    if not (bulk / "face_mask_detection").is_dir():
        pytest.skip("faces_bulk absent from ../shared/data")
    photos = collect_photos(bulk)
    sources = {p[0] for p in photos}
    assert sources == {"celebamask_hq", "without_mask", "deepface"}
    assert not any("with_mask" in str(p[1]).split("without_mask")[0] for p in photos)
    ids = {p[1].name: p[2] for p in photos if p[0] == "without_mask"}
    assert ids["0_0_aidai_0014.jpg"] == ids["0_0_aidai_0029.jpg"] == "without_mask_aidai"


def _tiny_crops(real_crop, tmp_path):
    img, lm = real_crop
    row = {
        "images": img,
        "landmarks": lm,
        "labels": np.full(img.shape[:2], 255, np.uint8),
        "padded": np.float32(0),
        "source": "eos",
        "identity": "eos",
        "split": "train",
        "name": "eos/image_0010.png",
    }
    path = tmp_path / "faces.npz"
    save_face_crops(path, [row, row])
    return path


def test_crop_file_round_trip(real_crop, tmp_path):
    c = load_face_crops(_tiny_crops(real_crop, tmp_path))
    assert isinstance(c, FaceCrops) and c.images.shape == (2, 64, 64, 3)
    assert c.select(np.array([True, False])).name.tolist() == ["eos/image_0010.png"]


def test_batches_are_a_function_of_the_step_and_resume_is_exact(real_crop, tmp_path):
    faces = _tiny_crops(real_crop, tmp_path)
    c = load_face_crops(faces)
    a = make_batch(c, np.random.default_rng([0, 3]), 2)
    b = make_batch(c, np.random.default_rng([0, 3]), 2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    small = {"faces": faces, "batch": 2, "widths": (8, 8, 8, 8, 8), "save_every": 1}
    straight = train_segmenter(SegTrainConfig(out=tmp_path / "a", steps=2, **small))
    train_segmenter(SegTrainConfig(out=tmp_path / "b", steps=1, **small))
    resumed = train_segmenter(SegTrainConfig(out=tmp_path / "b", steps=2, **small))
    assert straight.step == resumed.step == 2
    from deocc_core.nets.checkpoint import load_checkpoint

    wa = load_checkpoint(straight.checkpoint)["G"]
    wb = load_checkpoint(resumed.checkpoint)["G"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def _crops_named(names: list[str], splits: list[str], identities: list[str]) -> FaceCrops:
    n = len(names)
    return FaceCrops(
        images=np.zeros((n, 8, 8, 3), np.uint8),
        landmarks=np.zeros((n, 68, 2), np.float32),
        labels=np.zeros((n, 8, 8), np.uint8),
        padded=np.zeros(n, np.float32),
        source=np.array(["celebamask_hq"] * n),
        identity=np.array(identities),
        split=np.array(splits),
        name=np.array(names),
    )


def test_real_glasses_wearers_split_by_a_fixed_rule_per_image(shared_data):
    from deocc_core.segment.faces import GLASSES_TRAIN, split_glasses

    stems = sorted(p.stem for p in (shared_data / "faces_bulk/celebamask_hq/images").glob("*.jpg"))
    if len(stems) < 60:
        pytest.skip("CelebAMask-HQ subset absent from ../shared/data")
    ids = [f"celeb_{s}" for s in stems[:60]]
    splits = ["glasses"] * 40 + ["train"] * 20
    c = split_glasses(_crops_named([f"celebamask_hq/{s}.jpg" for s in stems[:60]], splits, ids))
    assert c.split[40:].tolist() == ["train"] * 20  # other faces untouched
    halves = c.split[:40].tolist()
    assert 10 <= halves.count(GLASSES_TRAIN) <= 30 and set(halves) == {"glasses", GLASSES_TRAIN}
    # the rule is per image: the same faces in another crop file get the same halves
    alone = split_glasses(_crops_named(c.name[:40:3].tolist(), ["glasses"] * 14, ids[:40:3]))
    assert alone.split.tolist() == halves[::3]


def _write_shard(path, img, rows):
    """A shard of ``(occ_mask, class, source_key)`` rows on one real crop."""
    from deocc_core.occluders.classes import OccluderClass
    from deocc_core.synth.schema import Sample
    from deocc_core.synth.shards import ShardWriter

    s = img.shape[0]
    with ShardWriter(path, s, 3, len(rows)) as w:
        for occ, cls, key in rows:
            full = np.full((s, s), 255, np.uint8)
            w.add(
                Sample(img, img, img, full, occ, full, np.zeros((68, 2), np.float32),
                       np.zeros(3, np.float32), int(OccluderClass[cls]), 0, key, key + "#0")
            )  # fmt: skip


def test_3d_occluder_samples_follow_the_face_split_and_glasses_get_their_lenses(
    real_crop, tmp_path
):
    import cv2

    from deocc_core.segment.occ3d import load_occ_samples

    img, _ = real_crop
    # a faintly tinted lens in a frame broken at opacity > 0.5 (thin frames at 128 px)
    ring = cv2.circle(np.full((64, 64), 0, np.uint8), (32, 32), 10, 30, -1)
    ring = cv2.circle(ring, (32, 32), 10, 255, 2)
    ring[20:26, 30:34] = 0
    hand = np.zeros((64, 64), np.uint8)
    hand[40:60, 10:30] = 200
    _write_shard(
        tmp_path / "train-00000.h5",
        img,
        [(ring, "EYEGLASSES", "a/p1.jpg"), (hand, "HAND", "b/p2.jpg"), (hand, "HAND", "a/p3.jpg")],
    )
    c = _crops_named(
        ["x/p1.jpg", "x/p2.jpg", "x/p3.jpg"], ["train", "train", "test"], ["1", "2", "3"]
    )
    got = load_occ_samples(tmp_path, c, "train")
    assert got.classes.tolist() == ["eyeglasses", "hand"]  # p3 is a test photo
    assert got.images.dtype == np.uint8 and got.targets.shape == (2, 64, 64)
    # the lenses inside the frame count for eyeglasses; other objects stay as they are
    assert got.targets[0, 32, 32] and not got.frames[0, 32, 32] and got.frames[0, 32, 42]
    assert (got.targets[1] == (hand > 127)).all()
    assert load_occ_samples(tmp_path, c, "test").classes.tolist() == ["hand"]


def test_a_batch_mixes_its_labelled_sources_by_share(real_crop, tmp_path):
    from deocc_core.segment.train import labelled_batch

    img, _ = real_crop
    target = np.zeros(img.shape[:2], bool)
    target[20:40, 10:50] = True
    x, y = labelled_batch(img[None], target[None], np.random.default_rng(1), 5)
    assert x.shape == (5, 64, 64, 3) and y.shape == (5, 64, 64) and y.dtype == np.float32
    # jittered by a small similarity, so the box stays about where it was
    assert all(abs(t.sum() / target.sum() - 1) < 0.3 for t in y)
    assert (y[:, 30, 30] == 1).all() and (y[:, 5, 30] == 0).all()


def test_only_checked_train_labels_of_real_masks_are_trained_on(real_crop, tmp_path):
    from deocc_core.errors import InputError
    from deocc_core.segment.pseudo import load_real_masks, save_real_masks
    from deocc_core.segment.train import _extra_sources

    img, _ = real_crop
    t = np.zeros(img.shape[:2], bool)
    t[32:] = True
    rows = [
        {"images": img, "targets": t, "ok": ok, "split": split, "name": f"with_mask/{k}.jpg"}
        for k, (ok, split) in enumerate([(True, "train"), (False, "train"), (True, "test")])
    ]
    path = tmp_path / "real.npz"
    save_real_masks(path, rows)
    assert load_real_masks(path).trainable().name.tolist() == ["with_mask/0.jpg"]
    faces = _tiny_crops(real_crop, tmp_path)
    cfg = SegTrainConfig(faces=faces, real_masks=str(path), real_share=0.5)
    ((share, images, targets),) = _extra_sources(cfg, load_face_crops(faces))
    assert share == 0.5 and images.shape == (1, 64, 64, 3) and targets[0].sum() == 32 * 64
    save_real_masks(path, rows[1:2])
    with pytest.raises(InputError, match="no train label passed"):
        _extra_sources(cfg, load_face_crops(faces))
    with pytest.raises(InputError, match="not found"):
        load_real_masks(tmp_path / "missing.npz")
