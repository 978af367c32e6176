"""The MediaPipe backend: the 468 -> iBUG-68 map, and detection on real (occluded) faces."""

from __future__ import annotations

import numpy as np
import pytest

from deocc_core.errors import ShapeError
from deocc_core.landmarks.facemesh import MESH_POINTS, ibug68_mesh_map, mesh_to_ibug68


def test_map_file_covers_68_points_with_convex_weights():
    m = ibug68_mesh_map()
    assert len(m) == 68
    for ids, w in m:
        assert 1 <= ids.size <= 3 and ids.min() >= 0 and ids.max() < MESH_POINTS
        assert (w >= 0).all() and abs(w.sum() - 1) < 1e-3


@pytest.mark.parametrize("n", [1, 4])
def test_mesh_to_ibug68_commutes_with_affine_maps(n):
    rng = np.random.default_rng(0)
    mesh = rng.uniform(0, 200, (n, MESH_POINTS, 3))
    a, t = np.array([[0.9, -0.2], [0.3, 1.1]]), np.array([5.0, -7.0])
    out = mesh_to_ibug68(mesh)
    moved = mesh.copy()
    moved[..., :2] = mesh[..., :2] @ a.T + t
    assert out.shape == (n, 68, 2) and out.dtype == np.float32
    np.testing.assert_allclose(mesh_to_ibug68(moved), out @ a.T + t, rtol=1e-5, atol=1e-3)
    assert mesh_to_ibug68(mesh[0]).shape == (68, 2)
    with pytest.raises(ShapeError, match="mesh"):
        mesh_to_ibug68(np.zeros((67, 2)))


@pytest.fixture(scope="module")
def detector():
    pytest.importorskip("mediapipe")
    from deocc_core.landmarks.detect import make_detector

    return make_detector("mediapipe")


def test_finds_the_labelled_faces_and_lands_near_the_labels(detector, shared_data):
    from deocc_core.imageio import read_image
    from deocc_core.landmarks.readers import find_annotation, read_annotation, read_mat_annotation

    errors = []
    for path in sorted((shared_data / "faces" / "PRNet_AFLW2000").glob("*.jpg")):
        ann = find_annotation(path)
        if abs(read_mat_annotation(ann).yaw_deg) > 45:
            continue
        gt = read_annotation(ann)
        faces = detector.detect(read_image(path))
        assert len(faces) == 1, path.name
        f = faces[0]
        assert f.landmarks.shape == (68, 2) and f.detector.startswith("mediapipe")
        errors.append(
            np.linalg.norm(f.landmarks - gt, axis=1).mean() / np.linalg.norm(gt[45] - gt[36])
        )
    # measured: median 0.06 inter-ocular on these 9 faces (the map was derived on them)
    assert len(errors) >= 8 and np.median(errors) < 0.1


def test_finds_real_masked_faces_and_no_face_in_noise(detector, shared_data):
    from deocc_core.imageio import read_image

    masked = sorted((shared_data / "faces_bulk" / "face_mask_detection" / "with_mask").glob("*"))
    found = sum(bool(detector.detect(read_image(p))) for p in masked[:20])
    assert found >= 15  # dlib's HOG finds ~5 of these
    rng = np.random.default_rng(0)
    assert detector.detect(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)) == []
    assert detector.detect(np.full((100, 100, 3), 128, np.uint8)) == []


def test_tiny_and_covered_faces_fall_back_to_box_landmarks(detector, shared_data):
    """The mesh refuses these (presence < 0.05); BlazeFace's box + dlib's predictor finds them."""
    from deocc_core.imageio import read_image
    from deocc_core.landmarks.facemesh import FaceMeshDetector

    masked = shared_data / "faces_bulk" / "face_mask_detection" / "with_mask"
    mesh_only = FaceMeshDetector(box_landmarks=False)
    for name in ("with_mask470.jpg", "345.jpg"):  # a 100 px thumbnail; mask + fringe
        img = read_image(masked / name)
        assert mesh_only.detect(img) == [], name
        faces = detector.detect(img)
        assert len(faces) == 1 and faces[0].detector == "mediapipe-box+dlib", name
        lm = faces[0].landmarks
        assert lm.shape == (68, 2) and np.isfinite(lm).all()
        # a face shape: eyes above the mouth, the jaw wider than the eyes' span
        assert lm[36:48, 1].mean() < lm[48:68, 1].mean()
        assert np.ptp(lm[0:17, 0]) > np.ptp(lm[36:48, 0])
    mesh_only.close()
    # fabric textures hold no face: the fallback adds none
    fabrics = sorted((shared_data / "occluders" / "MaskTheFace" / "masks" / "textures").rglob("*"))
    for path in [p for p in fabrics if p.suffix in (".jpg", ".png")][:4]:
        assert detector.detect(read_image(path)) == [], path.name


def test_several_faces_left_to_right(detector, shared_data):
    from deocc_core.imageio import read_image

    img = read_image(shared_data / "faces" / "dlib_examples_faces" / "2008_002506.jpg")
    faces = detector.detect(img)
    xs = [float(f.box[0]) for f in faces]
    assert len(faces) >= 3 and xs == sorted(xs)
    assert [len(x) for x in detector.detect_batch([img, img[:, ::-1].copy()])] == [len(faces)] * 2


def test_native_logs_stay_off_the_terminal(shared_data):
    """MediaPipe / TFLite's C++ warnings (load, first inference, teardown) never reach fd 2.

    Also (the same fresh interpreter): the detector loads only the MediaPipe modules it
    uses (no matplotlib: start-up), and ``import mediapipe`` afterwards is the whole package.
    """
    import subprocess
    import sys

    pytest.importorskip("mediapipe")
    photo = shared_data / "faces" / "PRNet_AFLW2000" / "image00050.jpg"
    code = (
        "import sys\n"
        "from deocc_core.imageio import read_image\n"
        "from deocc_core.landmarks.detect import make_detector\n"
        f"faces = make_detector('mediapipe').detect(read_image({str(photo)!r}))\n"
        "print(len(faces))\n"
        "print('matplotlib' in sys.modules)\n"
        "import mediapipe as mp\n"
        "print(mp.__version__ > '0', mp.solutions.hands.Hands.__name__)\n"
        "print('ours', file=sys.stderr)\n"  # our own stderr still gets through
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:3] == ["1", "False", "True Hands"], r.stdout
    assert r.stderr == "ours\n"


def test_a_large_photo_lands_where_its_small_copy_does(detector, shared_data):
    """BlazeFace runs on a copy shrunk to DETECT_SIDE and the mesh on the face's own pixels:
    a photo scaled 3x (1350 px) gives the same landmarks, scaled, as the 450 px original."""
    import cv2

    from deocc_core.imageio import read_image
    from deocc_core.landmarks.facemesh import DETECT_SIDE

    img = read_image(shared_data / "faces" / "PRNet_AFLW2000" / "image00050.jpg")
    big = cv2.resize(img, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    assert max(big.shape[:2]) > DETECT_SIDE >= max(img.shape[:2])
    small, large = detector.detect(img), detector.detect(big)
    assert len(small) == len(large) == 1
    lm, lm_big = small[0].landmarks, (large[0].landmarks + 0.5) / 3 - 0.5  # pixel centres
    iod = np.linalg.norm(lm[45] - lm[36])
    # measured: 0.0008 inter-ocular
    assert np.linalg.norm(lm - lm_big, axis=1).mean() / iod < 0.02
