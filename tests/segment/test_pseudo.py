"""Pseudo-labels of real face masks: the split, the label on a real photo, the training mix."""

from __future__ import annotations

from collections import defaultdict

import cv2
import numpy as np
import pytest

from deocc_core.landmarks.detect import make_detector
from deocc_core.segment.faces import largest_face_crop
from deocc_core.segment.pseudo import (
    mask_pseudo_label,
    real_mask_photos,
)


@pytest.fixture(scope="module")
def bulk(shared_data):
    return shared_data / "faces_bulk"


@pytest.fixture(scope="module")
def detector():
    return make_detector("mediapipe")


def _label(path, detector):
    found = largest_face_crop(path, detector, 128)
    assert found is not None, f"{path}: no face found"
    al, inside, _ = found
    # no segmenter seed: the face-mask prior alone must find the mask
    return al, mask_pseudo_label(al.image, al.landmarks, inside, np.zeros((128, 128), np.float32))


def test_real_masked_photos_split_by_person_and_both_splits_are_used(bulk):
    photos = real_mask_photos(bulk)
    names = [n for n, _, _ in photos]
    assert len(names) == len(set(names)) > 1000
    by_person = defaultdict(set)
    for name, _, split in photos:
        if name.startswith("rwmfd_part1/"):
            by_person[name.split("/")[1]].add(split)
    assert len(by_person) > 10 and all(len(s) == 1 for s in by_person.values())
    test = sum(s == "test" for _, _, s in photos) / len(photos)
    assert 0.1 < test < 0.4


def test_a_real_face_mask_is_labelled_and_a_bare_face_is_rejected(bulk, detector):
    al, lab = _label(bulk / "face_mask_detection/with_mask/103.jpg", detector)
    assert lab.ok, lab.reason
    mouth = np.zeros((128, 128), np.uint8)
    cv2.fillConvexPoly(mouth, cv2.convexHull(np.round(al.landmarks[48:60]).astype(np.int32)), 1)
    eyes = np.zeros((128, 128), np.uint8)
    for idx in (slice(36, 42), slice(42, 48)):
        cv2.fillConvexPoly(eyes, cv2.convexHull(np.round(al.landmarks[idx]).astype(np.int32)), 1)
    assert lab.target[mouth > 0].mean() > 0.9 and lab.target[eyes > 0].mean() == 0
    assert 0.08 < lab.target.mean() < 0.4
    bare = bulk / "face_mask_detection/without_mask/0_0_aidai_0043.jpg"
    _, lab = _label(bare, detector)
    assert not lab.ok and lab.reason == "skin-coloured"


def test_pseudo_refuses_an_output_it_cannot_write_before_any_work(tmp_path, shared_data):
    from _inproc import run_main

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    r = run_main(
        "train_segmenter",
        "pseudo",
        "--faces-bulk",
        shared_data / "faces_bulk",
        "--out",
        blocker / "labels.npz",
    )
    assert r.returncode == 2 and "cannot create output directory" in r.stderr
    assert "Traceback" not in r.stderr and not list(tmp_path.glob("**/*.npz"))
