"""The package skeleton: shared helpers behave as documented."""

from __future__ import annotations

import numpy as np
import pytest

from deocc_core.check import check_array
from deocc_core.errors import ShapeError
from deocc_core.landmarks.ibug import ibug_scheme
from deocc_core.morphable.params import FitParams, Pose, pack_params, unpack_params


def test_check_array_names_argument_and_shapes() -> None:
    with pytest.raises(ShapeError, match=r"landmarks: expected shape \[68, 2\], got \[5, 2\]"):
        check_array(np.zeros((5, 2)), "landmarks", (68, 2))
    with pytest.raises(ShapeError, match="expected dtype float32, got int64"):
        check_array(np.zeros((68, 2), np.int64), "landmarks", (68, 2), np.float32)
    out = check_array(
        np.zeros((3, 4), np.float64).T, "x", (None, 3), cast=np.float32, contiguous=True
    )
    assert out.dtype == np.float32 and out.flags.c_contiguous


def test_params_round_trip() -> None:
    rng = np.random.default_rng(0)
    p = FitParams(
        rng.normal(size=7).astype(np.float32),
        rng.normal(size=4).astype(np.float32),
        Pose(2.0, 0.1, -0.3, 0.05, 12.0, 20.0),
    )
    q = unpack_params(pack_params(p), 7, 4)
    assert np.array_equal(q.id_coef, p.id_coef) and np.array_equal(q.exp_coef, p.exp_coef)
    assert q.pose == Pose.from_array(p.pose.as_array())
    with pytest.raises(ShapeError):
        unpack_params(np.zeros(10, np.float32), 7, 4)


def test_ibug_mirror_is_an_involution_and_parts_cover_all_points() -> None:
    s = ibug_scheme()
    assert np.array_equal(s.mirror[s.mirror], np.arange(68))
    assert sorted(np.concatenate(list(s.parts.values())).tolist()) == list(range(68))
    assert s.mirror[0] == 16 and s.mirror[48] == 54 and s.mirror[30] == 30
