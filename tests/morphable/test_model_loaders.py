"""Model loaders on the real shared files, and on small files written in the published formats."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.io import savemat

from deocc_core.errors import FormatError, InputError
from deocc_core.morphable.model import MorphableModel, load_model


def test_surrey_model_through_eos(sfm_dir):
    m = load_model(sfm_dir / "sfm_shape_3448.bin")
    assert (m.n_vertices, len(m.triangles), m.n_id, m.n_exp) == (3448, 6736, 63, 6)
    assert "happiness" in m.exp_names and not m.has_albedo
    lm = m.mean[m.landmarks68]
    assert lm[8, 1] < lm[57, 1] < lm[30, 1] < lm[27, 1] < lm[19, 1]  # chin < mouth < nose < brows
    assert lm[0, 0] < lm[8, 0] < lm[16, 0]  # jaw runs subject-right to left via the contour json
    assert m.contour_right.size == 17


def test_3ddfa_folder_gives_the_paper_mesh(ddfa_dir):
    m = load_model(ddfa_dir)
    assert (m.n_vertices, len(m.triangles)) == (53215, 105840)
    width = np.ptp(m.mean[m.landmarks68, 0])
    assert 100 < width < 200  # converted from micrometres to mm


def test_npz_round_trip_and_landmark_override(tmp_path):
    m = load_model("starter")
    path = m.save(tmp_path / "m.npz")
    again = load_model(path)
    assert again.sha256 == m.sha256 and again.exp_names == m.exp_names
    np.testing.assert_array_equal(again.albedo_mean, m.albedo_mean)
    ids = tmp_path / "lm.txt"
    ids.write_text(" ".join(str(i) for i in range(68)))
    assert load_model(path, landmarks_index=ids).landmarks68.tolist() == list(range(68))


def _tiny(v=80, k=4, rng=np.random.default_rng(0)):
    mean = rng.normal(size=(v, 3)) * 50
    tri = np.stack([np.arange(v - 2), np.arange(1, v - 1), np.arange(2, v)], 1)
    return mean, rng.normal(size=(3 * v, k)), tri


def test_bfm2009_mat_format(tmp_path):
    mean, basis, tri = _tiny()
    savemat(tmp_path / "01_MorphableModel.mat", {
        "shapeMU": (mean * 1000).reshape(-1, 1), "shapePC": basis, "shapeEV": np.full((4, 1), 2000.0),
        "texMU": np.full((mean.size, 1), 128.0), "texPC": np.zeros((mean.size, 2)), "texEV": np.ones((2, 1)),
        "tl": tri + 1,
    })
    with pytest.raises(FormatError, match="68 iBUG"):
        load_model(tmp_path / "01_MorphableModel.mat")
    np.save(tmp_path / "keypoints_sim.npy", (3 * np.arange(68)[:, None] + np.arange(3)).reshape(-1))
    m = load_model(tmp_path / "01_MorphableModel.mat")
    np.testing.assert_allclose(m.mean, mean, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(m.id_std, 2.0)  # micrometres → mm
    assert m.has_albedo and abs(m.albedo_mean.mean() - 128 / 255) < 1e-6


def test_deep3d_front_mat_format(tmp_path):
    mean, basis, tri = _tiny()
    savemat(tmp_path / "BFM_model_front.mat", {
        "meanshape": mean.reshape(1, -1), "idBase": basis, "exBase": basis[:, :2], "meantex": np.full((1, mean.size), 200.0),
        "texBase": np.zeros((mean.size, 3)), "tri": tri + 1, "keypoints": np.arange(1, 69)[None],
    })
    m = load_model(tmp_path / "BFM_model_front.mat")
    assert (m.n_id, m.n_exp, m.landmarks68[0]) == (4, 2, 0) and m.has_albedo


def test_3ddfa_v2_pickle_format(tmp_path):
    mean, basis, tri = _tiny()
    d = {"u": (mean * 1000).reshape(-1, 1).astype(np.float32), "w_shp": basis.astype(np.float32), "w_exp": basis[:, :3].astype(np.float32),
         "keypoints": (3 * np.arange(68)[:, None] + np.arange(3)).reshape(-1)}
    (tmp_path / "bfm_noneck_v3.pkl").write_bytes(pickle.dumps(d))
    with pytest.raises(FormatError, match="tri.pkl"):
        load_model(tmp_path / "bfm_noneck_v3.pkl")
    (tmp_path / "tri.pkl").write_bytes(pickle.dumps(tri.T.astype(np.int32)))
    m = load_model(tmp_path / "bfm_noneck_v3.pkl")
    assert (m.n_id, m.n_exp, len(m.triangles)) == (4, 3, len(tri))


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_model(tmp_path / "nope.npz")
    (tmp_path / "x.ply").write_text("ply")
    with pytest.raises(FormatError, match="unknown model format"):
        load_model(tmp_path / "x.ply")
    (tmp_path / "broken.npz").write_bytes(b"garbage")
    with pytest.raises(FormatError, match="broken.npz"):
        load_model(tmp_path / "broken.npz")
    m = load_model("starter")
    with pytest.raises(FormatError, match="out of range"):
        MorphableModel(m.mean, m.id_basis, m.id_std, m.exp_basis, m.exp_std, m.triangles, np.full(68, 10**6, np.int32))
