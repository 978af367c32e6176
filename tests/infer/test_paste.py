"""Paste-back driven by the occlusion mask: on a real photo, only the occluded region changes,
occluders outside the face silhouette are replaced too, and no seam shows."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deocc_core.face.prepare import FaceInputConfig, prepare_face
from deocc_core.imageio import read_image
from deocc_core.infer.paste import (
    IDENTITY,
    PasteConfig,
    paste_back,
    paste_crop,
    paste_into,
    paste_region,
    paste_weight,
)
from deocc_core.landmarks.readers import read_pts
from deocc_core.morphable.model import load_model

S = 256


@pytest.fixture(scope="module")
def real_face(ibug_pts_image):
    img_path, pts = ibug_pts_image
    photo = read_image(img_path)
    face = prepare_face(photo, read_pts(pts), load_model("starter"), FaceInputConfig(size=S))
    return photo, face


def test_weight_is_one_on_the_occluder_zero_beyond_the_feather_and_at_the_border():
    m = np.zeros((S, S), np.uint8)
    m[100:140, 90:170] = 200  # m̂ ≈ 0.78
    m[140:150, 90:170] = 100  # m̂ ≈ 0.39: below the threshold, inside the grow margin
    cfg = PasteConfig()
    w = paste_weight(m, cfg)
    assert w.dtype == np.float32 and w.shape == (S, S)
    assert (w[100:140, 90:170] == 1).all()
    dist = cv2.distanceTransform((m < 128).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    assert (w[dist <= cfg.grow * S] == 1).all()
    assert (w[dist >= (cfg.grow + cfg.feather) * S + 1e-3] == 0).all()
    ramp = (dist > cfg.grow * S) & (dist < (cfg.grow + cfg.feather) * S)
    assert ((w[ramp] > 0) & (w[ramp] < 1)).mean() > 0.9
    assert not paste_weight(np.full((S, S), 127, np.uint8)).any()  # nothing ≥ 0.5: no change
    full = paste_weight(np.full((S, S), 255, np.uint8))
    assert (full[[0, -1], :] == 0).all() and (full[:, [0, -1]] == 0).all()
    assert full[S // 2, S // 2] == 1 and np.abs(np.diff(full, axis=0)).max() < 0.2


def test_region_is_the_mask_for_mask_aware_G_and_the_face_for_the_paper_G(real_face):
    _, face = real_face
    m_hat = np.zeros((S, S), np.float32)
    m_hat[10:20, 10:20] = 1.0
    assert np.array_equal(paste_region("none", m_hat, face.face_mask), face.face_mask)
    r = paste_region("mask", m_hat, face.face_mask)
    assert r.dtype == np.uint8 and r.max() == 255 and (r > 0).sum() == 100


def test_paste_back_on_a_real_photo_changes_only_the_occluded_region(real_face):
    photo, face = real_face
    # an occluder outside the 3DMM silhouette M (a hand below the chin, reaching the crop's
    # bottom edge) plus one on the face
    region = np.zeros((S, S), np.uint8)
    outside = (face.face_mask == 0).copy()
    outside[: int(0.8 * S)] = False
    outside[:, : S // 3] = False
    outside[:, 2 * S // 3 :] = False
    region[outside] = 255
    region[110:140, 100:160] = 255
    out_crop = np.zeros_like(face.crop)
    out_crop[...] = (250, 0, 250)
    result, a = paste_back(photo, out_crop, face.inverse, paste_weight(region))
    assert result.shape == photo.shape and a.shape == photo.shape[:2]
    untouched = a == 0
    assert np.array_equal(result[untouched], photo[untouched])  # bit for bit
    # everything farther than grow + feather from the occluded region is untouched
    h, w = photo.shape[:2]
    occ_photo = cv2.warpAffine(region, face.inverse, (w, h), flags=cv2.INTER_NEAREST) > 0
    scale = np.sqrt(abs(np.linalg.det(face.inverse[:, :2])))  # photo px per crop px
    far = cv2.distanceTransform((~occ_photo).astype(np.uint8), cv2.DIST_L2, 5)
    cfg = PasteConfig()
    assert untouched[far > ((cfg.grow + cfg.feather) * S + 2) * scale].all()
    # the occluded pixels, including those outside M, now hold G's colour
    core_face = cv2.erode(region, np.ones((5, 5), np.uint8))
    core_face[outside] = 0
    inner = cv2.warpAffine(core_face, face.inverse, (w, h), flags=cv2.INTER_NEAREST) > 0
    assert np.abs(result[inner].astype(int) - (250, 0, 250)).max() <= 1
    hand = np.zeros((S, S), np.uint8)
    hand[outside] = 255
    hand[int(0.95 * S) :] = 0  # the crop border fades out
    hand = cv2.erode(hand, np.ones((5, 5), np.uint8))
    hand_photo = cv2.warpAffine(hand, face.inverse, (w, h), flags=cv2.INTER_NEAREST) > 0
    assert hand_photo.sum() > 100 and (a[hand_photo] > 0.99).all()
    # no seam: neither at the occluder's outline nor at the crop's border
    step = max(np.abs(np.diff(a, axis=0)).max(), np.abs(np.diff(a, axis=1)).max())
    assert step < 0.2 / max(scale, 1) + 0.05


def test_paste_crop_is_paste_back_in_crop_space(real_face):
    _, face = real_face
    rng = np.random.default_rng(0)
    out = rng.integers(0, 256, face.crop.shape, dtype=np.uint8)
    region = np.zeros((S, S), np.uint8)
    region[150:200, 80:180] = 255
    got = paste_crop(face.crop, out, region)
    want, a = paste_back(face.crop, out, IDENTITY, paste_weight(region))
    assert np.array_equal(got, want)
    assert np.array_equal(got[a == 0], face.crop[a == 0]) and (a == 0).mean() > 0.5
    assert np.array_equal(got[a == 1], out[a == 1])


def test_a_crop_outside_the_photo_changes_nothing():
    photo = np.full((40, 50, 3), 7, np.uint8)
    crop = np.full((32, 32, 3), 200, np.uint8)
    inv = np.array([[1.0, 0, 500], [0, 1.0, 500]])
    out, a = paste_back(photo, crop, inv, np.ones((32, 32), np.float32))
    assert np.array_equal(out, photo) and not a.any()


def test_paste_into_equals_paste_back_face_after_face(real_face):
    """In place around each crop: the same pixels and weights as pasting copies, two faces."""
    photo, face = real_face
    rng = np.random.default_rng(0)
    crop_out = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
    m = np.zeros((S, S), np.uint8)
    m[120:200, 60:200] = 255
    w = paste_weight(m)
    second = face.inverse + [[0, 0, 37.0], [0, 0, -21.0]]  # a second "face", overlapping
    ref, a1 = paste_back(photo, crop_out, face.inverse, w)
    ref, a2 = paste_back(ref, crop_out[::-1].copy(), second, w)
    image, weight = photo.copy(), np.zeros(photo.shape[:2], np.float32)
    box = paste_into(image, weight, crop_out, face.inverse, w)
    paste_into(image, weight, crop_out[::-1].copy(), second, w)
    assert np.array_equal(image, ref)
    assert np.array_equal(weight, np.maximum(a1, a2))
    x0, y0, x1, y1 = box
    assert 0 < x1 - x0 < photo.shape[1] and weight[:, :x0].max() == 0  # only around the crop
