"""Face alignment on real AFLW2000-3D faces: the crop holds the face and inverts exactly."""

from __future__ import annotations

import numpy as np

from deocc_core.face.align import align_face, transform_points
from deocc_core.landmarks.parts import part
from deocc_core.synth.sources import make_source


def test_alignment_maps_landmarks_and_inverts(aflw_dir):
    src = make_source("aflw2000-3d", aflw_dir)
    rec = src.load(src.keys()[0])[0]
    al = align_face(rec.image, rec.landmarks, 128)
    assert (al.landmarks > 0).all() and (al.landmarks < 128).all()
    np.testing.assert_allclose(transform_points(al.landmarks, al.inverse), rec.landmarks, atol=1e-3)
    eyes = al.landmarks[part("eye_left")].mean(0) - al.landmarks[part("eye_right")].mean(0)
    assert abs(eyes[1]) < 1e-3 * 128  # eyes level after alignment


def test_matrix_and_inverse_compose_to_identity_on_every_shared_face(aflw_dir, lp300w_dir):
    for root, name in ((aflw_dir, "aflw2000-3d"), (lp300w_dir, "300w3d")):
        src = make_source(name, root)
        for key in src.keys():
            rec = src.load(key)[0]
            al = align_face(rec.image, rec.landmarks, 256)
            m = np.vstack([al.matrix, [0, 0, 1]])
            inv = np.vstack([al.inverse, [0, 0, 1]])
            np.testing.assert_allclose(m @ inv, np.eye(3), atol=1e-9)
            # whole face inside with margin, even in profile
            assert al.landmarks.min() > 10 and al.landmarks.max() < 246, key
