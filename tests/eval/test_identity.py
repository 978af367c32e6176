"""dlib's face descriptor on our landmarks: same person close, different people apart."""

from __future__ import annotations

import numpy as np
import pytest

from deocc_core.eval.identity import SAME_PERSON, descriptor_distance, face_descriptors


@pytest.fixture(scope="module")
def aligned(faces_bulk_dir):
    """128 px crops + landmarks of deepface img1, img10 (person00) and img12 (person01)."""
    from deocc_core.face.align import align_face
    from deocc_core.imageio import read_image
    from deocc_core.landmarks.detect import make_detector

    det = make_detector("mediapipe")
    crops, lms = [], []
    for stem in ("img1", "img10", "img12"):
        image = read_image(faces_bulk_dir / f"{stem}.jpg")
        a = align_face(image, det.detect(image)[0].landmarks, 128)
        crops.append(a.image)
        lms.append(a.landmarks)
    return np.stack(crops), np.stack(lms).astype(np.float32)


def test_same_person_is_under_the_threshold_and_others_above(aligned):
    crops, lms = aligned
    d = face_descriptors(crops, lms)
    assert d.shape == (3, 128) and d.dtype == np.float32
    same = descriptor_distance(d[:1], d[1:2])[0]  # identities.tsv: both person00
    other = descriptor_distance(d[:2], d[2:3].repeat(2, 0))
    assert same < SAME_PERSON < other.min()


def test_the_given_landmarks_decide_the_chip(aligned):
    crops, lms = aligned
    shifted = lms[:1] + [12.0, 0.0]  # the same pixels cut elsewhere: another descriptor
    d = face_descriptors(np.concatenate([crops[:1], crops[:1]]), np.concatenate([lms[:1], shifted]))
    assert descriptor_distance(d[:1], d[1:])[0] > 0.05
    assert face_descriptors(crops[:0], lms[:0]).shape == (0, 128)
