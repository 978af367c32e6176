"""Named landmark parts and points agree with the iBUG scheme on a real annotated face."""

from __future__ import annotations

import numpy as np
import pytest

from deocc_core.errors import ConfigError
from deocc_core.landmarks.ibug import ibug_scheme
from deocc_core.landmarks.parts import part, point, point_names, points
from deocc_core.landmarks.readers import read_pts


def test_short_names_are_consistent_with_the_scheme():
    s = ibug_scheme()
    for name, i in point_names().items():
        assert 0 <= i < 68, name
        if "right" in name and "left" not in name:  # a subject-right point mirrors to a left one
            mirrored = [n for n, j in point_names().items() if j == s.mirror[i]]
            assert any("left" in n for n in mirrored), name
    assert point("chin") in part("jaw") and point("nose_tip") in part("nose_bridge")
    assert set(points("eye_right_outer", "eye_right_inner")) <= set(part("eye_right"))
    assert set(points("mouth_right", "lower_lip_bottom")) <= set(part("lips_outer"))


def test_named_points_sit_where_their_names_say_on_a_real_face(ibug_pts_image):
    lm = read_pts(ibug_pts_image[1])  # a frontal-ish annotated photo: y down, subject right = left
    y = lambda n: lm[point(n), 1]  # noqa: E731
    assert y("nose_top") < y("nose_tip") < y("upper_lip_top") < y("lower_lip_bottom") < y("chin")
    assert lm[point("eye_right_outer"), 0] < lm[point("eye_left_outer"), 0]
    assert np.all(lm[part("eye_right"), 1] < y("nose_tip"))


def test_unknown_names_are_config_errors():
    with pytest.raises(ConfigError, match="unknown iBUG-68 point 'nose'"):
        point("nose")
    with pytest.raises(ConfigError, match="parts: jaw"):
        part("ear")
