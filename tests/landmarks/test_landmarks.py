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
        assert (
            ann.landmarks.shape == (68, 2)
            and ann.yaw_deg is not None
            and ann.shape_para.shape == (199,)
        )


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


def test_hog_cnn_detects_all_shared_aflw_faces_with_nme_per_yaw_bin(aflw_dir):
    """Measured (08:40 UTC, dlib 19.x): HOG alone 9/13, +mirror 10/13, +CNN 13/13.
    NME (inter-ocular): <30 deg 0.017-0.070 (mean 0.044); 30-45 deg 0.049-0.052;
    >45 deg 0.068-0.43 (the 68-point predictor is frontal-trained: detected, not accurate)."""
    det = make_detector("dlib", detector="hog+cnn")
    bins: dict[str, list[float]] = {"<30": [], "30-45": [], ">45": []}
    for mat in sorted(aflw_dir.glob("*.mat")):
        ann = read_mat_annotation(mat)
        faces = det.detect(cv2.imread(str(mat.with_suffix(".jpg")))[:, :, ::-1].copy())
        assert faces, f"{mat.stem} (yaw {ann.yaw_deg:.0f}) not detected"
        y = abs(ann.yaw_deg)
        bins["<30" if y < 30 else "30-45" if y <= 45 else ">45"].append(
            min(landmark_nme(f.landmarks, ann.landmarks) for f in faces)
        )
    assert np.mean(bins["<30"]) < 0.06 and max(bins["<30"]) < 0.09
    assert max(bins["30-45"]) < 0.09
    assert len(bins[">45"]) == 4 and max(bins[">45"]) < 0.5


def test_mirror_search_maps_landmarks_back_exactly(ibug_pts_image):
    """A face found on the mirror gets the landmarks of predicting on the mirror and flipping."""
    from deocc_core.landmarks.detect import DlibDetector

    img = cv2.imread(str(ibug_pts_image[0]))[:, :, ::-1].copy()
    det = DlibDetector("hog")
    f = det.detect(img)[0]
    back = det.landmarks_in(
        img, f.box, mirrored=True
    )  # box in image pixels, predicted on the mirror
    assert (
        landmark_nme(back, f.landmarks) < 0.03
    )  # predictor on the mirror agrees with the original


def test_unknown_backend_lists_valid_ones():
    from deocc_core.errors import ConfigError

    with pytest.raises(ConfigError, match="valid: dlib, fan"):
        make_detector("mtcnn")
    with pytest.raises(ConfigError, match="hog, cnn, hog\\+cnn"):
        make_detector("dlib", detector="haar")


def test_model_files_ship_with_the_package_and_fan_fails_clearly(tmp_path):
    assert (dlib_model_dir() / "mmod_human_face_detector.dat").is_file()
    with pytest.raises(InputError, match="face-alignment|FAN weights"):
        make_detector("fan", weights_dir=tmp_path)


def test_batch_writes_one_pts_per_face_and_reports_skips(dlib_hog, ibug_pts_image, tmp_path):
    import shutil

    from deocc_core.landmarks.batch import detect_to_files

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(ibug_pts_image[0], src / "photo.png")
    (src / "notes.txt").write_text("not a photo")
    data = ibug_pts_image[0].read_bytes()
    (src / "broken.png").write_bytes(data[:200])
    run = detect_to_files([src], tmp_path / "out", dlib_hog)
    assert run.n_faces >= 1 and (tmp_path / "out" / "photo_landmarks.png").is_file()
    assert sorted(r for _, r in run.skipped) == ["not an image", "unreadable"]
    lm = read_pts(tmp_path / "out" / "photo_0.pts")
    assert landmark_nme(lm, read_pts(ibug_pts_image[1])) < 0.05


def test_imglab_xml_and_our_predictor_reproduce_dlibs_own_annotations(shared_data, dlib_hog):
    """dlib's example XML holds landmarks made by the same 68-point model: from the same
    boxes our predictor must give (nearly) the same points, which checks the reader's
    box/part conventions and our RGB handling end to end."""
    from deocc_core.landmarks.readers import read_imglab_xml

    xml = shared_data / "faces" / "dlib_examples_faces" / "testing_with_face_landmarks.xml"
    if not xml.is_file():
        pytest.skip("dlib example faces not present")
    faces = read_imglab_xml(xml)
    assert len(faces) == 25 and all(f.landmarks.shape == (68, 2) for f in faces)
    assert faces[0].landmarks[0].tolist() == [277.0, 194.0] and faces[0].box.tolist() == [
        274.0,
        181.0,
        325.0,
        233.0,
    ]
    boxes_only = read_imglab_xml(xml.with_name("testing.xml"))
    assert boxes_only[0].landmarks is None
    errs = []
    for f in faces:
        img = cv2.imread(str(f.image))[:, :, ::-1].copy()
        errs.append(np.abs(dlib_hog.landmarks_in(img, f.box) - f.landmarks).max())
    assert np.median(errs) <= 1.0


def test_dlib_on_the_300w_lp_sample_at_44_degrees_yaw(lp300w_dir):
    """Measured: one face, HOG, NME 0.016 against pt2d (yaw 44 deg from Pose_Para)."""
    mat = next(lp300w_dir.glob("*.mat"))
    ann = read_mat_annotation(mat)
    faces = make_detector("dlib").detect(
        cv2.imread(str(mat.with_suffix(".jpg")))[:, :, ::-1].copy()
    )
    assert len(faces) == 1 and landmark_nme(faces[0].landmarks, ann.landmarks) < 0.04
