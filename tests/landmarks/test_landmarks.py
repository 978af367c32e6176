"""Landmark readers and the offline dlib detector on real annotated photos."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from deocc_core.errors import FormatError, InputError
from deocc_core.landmarks.detect import dlib_model_dir, make_detector
from deocc_core.landmarks.readers import read_mat_annotation, read_pts, write_pts
from deocc_core.morphable.fit import landmark_nme


@pytest.fixture(scope="module")
def dlib_hog():
    return make_detector("dlib", mode="hog")


def test_pts_round_trip_and_1_based_convention(ibug_pts_image, tmp_path):
    _, pts = ibug_pts_image
    lm = read_pts(pts)
    first = [float(v) for v in pts.read_text().split("{")[1].split()[:2]]
    assert lm.shape == (68, 2) and np.allclose(lm[0], np.array(first) - 1)
    np.testing.assert_allclose(read_pts(write_pts(tmp_path / "x.pts", lm)), lm, atol=1e-3)


def test_bad_annotation_files(tmp_path):
    (tmp_path / "short.pts").write_text("version: 1\nn_points: 2\n{\n1 2\n3 4\n}\n")
    with pytest.raises(FormatError, match="2 points"):
        read_pts(tmp_path / "short.pts")
    with pytest.raises(InputError, match="not found"):
        read_pts(tmp_path / "missing.pts")


def test_mat_readers_for_aflw_and_300wlp(aflw_dir, lp300w_dir):
    a = read_mat_annotation(aflw_dir / "image00050.mat")
    b = read_mat_annotation(next(lp300w_dir.glob("*.mat")))
    for ann in (a, b):
        assert ann.landmarks.shape == (68, 2) and ann.yaw_deg is not None and ann.shape_para.shape == (199,)


def test_dlib_finds_faces_and_lands_near_ground_truth(dlib_hog, ibug_pts_image):
    img_path, pts = ibug_pts_image
    img = cv2.imread(str(img_path))[:, :, ::-1].copy()
    faces = dlib_hog.detect(img)
    gt = read_pts(pts)
    best = min(landmark_nme(f.landmarks, gt) for f in faces)
    assert best < 0.05


def test_hog_detection_on_near_frontal_aflw(dlib_hog, aflw_dir):
    nmes = []
    for mat in sorted(aflw_dir.glob("*.mat")):
        ann = read_mat_annotation(mat)
        if abs(ann.yaw_deg) > 30:
            continue
        faces = dlib_hog.detect(cv2.imread(str(mat.with_suffix(".jpg")))[:, :, ::-1].copy())
        if faces:
            nmes.append(landmark_nme(faces[0].landmarks, ann.landmarks))
    assert len(nmes) >= 5 and np.median(nmes) < 0.06


def test_model_files_ship_with_the_package_and_fan_fails_clearly(tmp_path):
    assert (dlib_model_dir() / "mmod_human_face_detector.dat").is_file()
    with pytest.raises(InputError, match="face-alignment|FAN weights"):
        make_detector("fan", weights_dir=tmp_path)
