"""Weak-perspective camera: projection against the plain float64 formula."""

from __future__ import annotations

import numpy as np
import pytest

from deocc_core.errors import ShapeError
from deocc_core.morphable.camera import project, rotation_matrix
from deocc_core.morphable.params import Pose


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_project_is_the_documented_formula_rounded_once(dtype):
    rng = np.random.default_rng(0)
    v = (rng.normal(size=(500, 3)) * 60).astype(dtype)
    pose = Pose(1.7, 0.2, -0.6, 0.1, 120.5, 99.0)
    rv = v.astype(np.float64) @ rotation_matrix(0.2, -0.6, 0.1).T * 1.7
    want = np.stack([rv[:, 0] + 120.5, -rv[:, 1] + 99.0, rv[:, 2]], 1)
    got = project(v, pose)
    assert got.dtype == np.float32 and got.shape == (500, 3)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-4)  # one float32 rounding


def test_project_rejects_bad_shapes():
    with pytest.raises(ShapeError, match="vertices"):
        project(np.zeros((4, 2)), Pose(1, 0, 0, 0, 0, 0))
