"""Landmark fitting: exact recovery on synthetic data, accuracy on real AFLW2000-3D landmarks."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.io import loadmat

from deocc_core.morphable.camera import estimate_pose, project
from deocc_core.morphable.fit import FitConfig, fit_landmarks
from deocc_core.morphable.model import load_model
from deocc_core.morphable.params import Pose


@pytest.fixture(scope="module")
def sfm(sfm_dir):
    return load_model(sfm_dir / "sfm_shape_3448.bin")


def test_recovers_pose_and_shape_of_a_synthetic_face(sfm):
    rng = np.random.default_rng(1)
    alpha = rng.normal(size=sfm.n_id) * sfm.id_std * 0.5
    truth = Pose(1.1, 0.15, -0.5, 0.1, 120.0, 130.0)
    lm = project(sfm.vertices(alpha)[sfm.landmarks68], truth)[:, :2]
    r = fit_landmarks(sfm, lm, config=FitConfig(rounds=1, rho_id=0.01, max_id=63))
    assert r.error_px < 0.5
    assert abs(r.params.pose.yaw - truth.yaw) < np.radians(2) and abs(r.params.pose.scale / truth.scale - 1) < 0.03


def test_zero_weights_ignore_occluded_landmarks(sfm):
    truth = Pose(1.0, 0.0, 0.3, 0.0, 128.0, 128.0)
    lm = project(sfm.mean[sfm.landmarks68], truth)[:, :2].copy()
    w = np.ones(68)
    lm[48:68] += 40.0  # a hand drags the mouth points away...
    w[48:68] = 0.0  # ...but they are marked occluded
    r = fit_landmarks(sfm, lm, w, FitConfig(rounds=1))
    assert r.error_px < 1.0 and abs(r.params.pose.yaw - 0.3) < np.radians(2)


def test_real_aflw2000_landmarks_fit_within_3_percent(sfm, aflw_dir):
    nmes, yaw_err = [], []
    for mat in sorted(aflw_dir.glob("*.mat")):
        d = loadmat(mat)
        lm = d["pt3d_68"][:2].T - 1.0
        r = fit_landmarks(sfm, lm)
        nmes.append(r.nme)
        yaw_err.append(abs(abs(np.degrees(r.params.pose.yaw)) - abs(np.degrees(d["Pose_Para"][0, 1]))))
    assert len(nmes) >= 10
    assert np.mean(nmes) < 0.03, nmes
    assert np.median(yaw_err) < 10, yaw_err


def test_contour_sliding_helps_turned_faces(sfm, aflw_dir):
    gain = []
    for mat in sorted(aflw_dir.glob("*.mat")):
        d = loadmat(mat)
        if abs(np.degrees(d["Pose_Para"][0, 1])) < 35:
            continue
        lm = d["pt3d_68"][:2].T - 1.0
        fixed = fit_landmarks(sfm, lm, config=FitConfig(rounds=1))
        slid = fit_landmarks(sfm, lm, config=FitConfig(rounds=3))
        gain.append(fixed.nme - slid.nme)
    assert gain and np.mean(gain) > 0


def test_estimate_pose_is_exact_without_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(68, 3)) * 50
    truth = Pose(2.0, -0.3, 0.7, 0.2, 10.0, -5.0)
    est = estimate_pose(x, project(x, truth)[:, :2])
    np.testing.assert_allclose(est.as_array(), truth.as_array(), atol=1e-3)
