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
