"""Texture coordinates (Surrey, BFM_UV.mat) and the UV texture unwrapped from a real photo."""

from __future__ import annotations

import numpy as np
import pytest

from deocc_core.errors import FormatError, InputError
from deocc_core.face.prepare import FaceInputConfig, prepare_face
from deocc_core.imageio import read_image
from deocc_core.landmarks.readers import read_annotation
from deocc_core.morphable.model import load_model
from deocc_core.recon.texture import pull_push_fill, uv_texture
from deocc_core.recon.uv import BFM_VERTICES, load_uv


@pytest.fixture(scope="module")
def sfm(sfm_dir):
    return load_model(sfm_dir / "sfm_shape_3448.bin")


@pytest.fixture(scope="module")
def sfm_face(sfm, ibug_pts_image):
    img, pts = ibug_pts_image
    return prepare_face(read_image(img), read_annotation(pts), sfm, FaceInputConfig(size=256))


def test_surrey_uv_is_its_own_and_v_points_up(sfm):
    uv = load_uv(sfm)
    assert uv.shape == (sfm.n_vertices, 2) and uv.dtype == np.float32
    assert load_uv(sfm) is uv  # cached on the model
    lm = sfm.landmarks68
    brow, chin = uv[lm[19]], uv[lm[8]]  # a brow above the chin: larger v (v up)
    assert brow[1] > chin[1]
    left_eye, right_eye = uv[lm[45]], uv[lm[36]]  # subject's left eye at larger x and u
    assert (sfm.mean[lm[45], 0] > sfm.mean[lm[36], 0]) == (left_eye[0] > right_eye[0])


def test_bfm_uv_from_the_3ddfa_v2_file(shared_data, ddfa_dir):
    uv_file = shared_data / "3dmm" / "3DDFA_V2" / "configs" / "BFM_UV.mat"
    if not uv_file.is_file():
        pytest.skip(f"{uv_file} not found")
    bfm = load_model(ddfa_dir)
    assert bfm.n_vertices == BFM_VERTICES
    uv = load_uv(bfm, uv_file)
    assert uv.shape == (BFM_VERTICES, 2) and 0 <= uv.min() and uv.max() <= 1
    lm = bfm.landmarks68
    assert uv[lm[19], 1] > uv[lm[8], 1]  # v up: brow above chin
    with pytest.raises(FormatError, match="53215 texture coordinates"):
        load_uv(load_model("starter"), uv_file)


def test_uv_file_errors(sfm, tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_uv(sfm, tmp_path / "nope.mat")
    bad = tmp_path / "uv.npy"
    np.save(bad, np.zeros((5, 2)))
    with pytest.raises(FormatError, match=r"\[5, 2\]"):
        load_uv(sfm, bad)
    assert load_uv(load_model("starter")) is None


def test_uv_texture_covers_the_visible_face_with_the_photo_colours(sfm, sfm_face):
    f = sfm_face
    rr = f.render_result
    uv = load_uv(sfm)
    tex = uv_texture(f.crop, rr.projected, rr.raster, uv, 256)
    assert tex.image.shape == (256, 256, 3) and tex.image.dtype == np.uint8
    # every vertex the camera sees lands on a texel sampled from the photo
    t = np.rint(np.stack([uv[:, 0] * 255, (1 - uv[:, 1]) * 255], 1)).astype(int)
    vis = rr.visible
    hit = tex.visible[t[vis, 1], t[vis, 0]]
    assert hit.mean() > 0.9
    # ... with the photo's colour there
    xy = np.rint(rr.projected[vis][hit, :2]).astype(int)
    photo = f.crop[xy[:, 1], xy[:, 0]].astype(float)
    texel = tex.image[t[vis][hit, 1], t[vis][hit, 0]].astype(float)
    assert np.median(np.abs(photo - texel)) < 12
    # hidden vertices (the far side of a turned head) are not sampled from the photo
    hidden = ~vis & (rr.projected[:, 2] < np.median(rr.projected[:, 2]))
    if hidden.sum() > 50:
        assert tex.visible[t[hidden, 1], t[hidden, 0]].mean() < 0.3
    assert 0.3 < tex.coverage <= 1.0


def test_pull_push_keeps_known_pixels_and_fills_the_rest():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (37, 50, 3))
    w = (rng.random((37, 50)) < 0.2).astype(np.float32)
    out = pull_push_fill(img, w)
    np.testing.assert_allclose(out[w == 1], img[w == 1], atol=1e-3)
    lo, hi = img[w == 1].min(0), img[w == 1].max(0)
    assert (out >= lo - 1e-3).all() and (out <= hi + 1e-3).all()
