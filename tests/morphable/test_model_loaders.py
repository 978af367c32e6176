"""Model loaders on the real shared files, and on small files written in the published formats."""

from __future__ import annotations

import dataclasses
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


def _tiny(v=80, k=4, rng=None):
    rng = np.random.default_rng(0) if rng is None else rng
    mean = rng.normal(size=(v, 3)) * 50
    tri = np.stack([np.arange(v - 2), np.arange(1, v - 1), np.arange(2, v)], 1)
    return mean, rng.normal(size=(3 * v, k)), tri


def _write_exp_pca(path, basis):
    """Exp_Pca.bin exactly as 3DDFA ships it: int32 n, float32 mean [3V], float32 modes [n, 3V]."""
    v3, n = basis.shape
    path.write_bytes(
        np.int32(n).tobytes() + np.zeros(v3, "<f4").tobytes() + basis.T.astype("<f4").tobytes()
    )


def test_bfm2009_mat_with_trim_expressions_keypoints_and_no_neck_crop(tmp_path):
    mean, basis, tri = _tiny(v=80)
    savemat(
        tmp_path / "01_MorphableModel.mat",
        {
            "shapeMU": (mean * 1000).reshape(-1, 1),
            "shapePC": basis,
            "shapeEV": np.full((4, 1), 2000.0),
            "texMU": np.full((mean.size, 1), 128.0),
            "texPC": np.zeros((mean.size, 2)),
            "texEV": np.ones((2, 1)),
            "tl": tri + 1,
        },
    )
    m = load_model(
        tmp_path / "01_MorphableModel.mat", landmarks_index=_index_file(tmp_path, range(68))
    )
    np.testing.assert_allclose(m.mean, mean, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(m.id_std, 2.0)  # micrometres → mm
    assert m.has_albedo and abs(m.albedo_mean.mean() - 128 / 255) < 1e-6
    # BFM winds clockwise: we flip to counter-clockwise
    assert m.triangles[0].tolist() == tri[0, ::-1].tolist()
    with pytest.raises(FormatError, match="--landmarks-index"):
        load_model(tmp_path / "01_MorphableModel.mat")

    # Exp_Pca.bin covers a trimmed vertex set (53,215 of 53,490 in the real files)
    keep = np.arange(3, 78)  # 75 vertices
    exp = np.random.default_rng(1).normal(size=(3 * keep.size, 3)) * 500.0
    _write_exp_pca(tmp_path / "Exp_Pca.bin", exp)
    with pytest.raises(FormatError, match="BFM_exp_idx.mat"):
        load_model(tmp_path / "01_MorphableModel.mat")
    savemat(tmp_path / "BFM_exp_idx.mat", {"trimIndex": (keep + 1)[:, None]})  # 1-based
    np.save(
        tmp_path / "keypoints_sim.npy", (3 * np.arange(68)[:, None] + np.arange(3)).reshape(-1)
    )  # trimmed space
    m = load_model(tmp_path / "01_MorphableModel.mat")
    assert (m.n_vertices, m.n_exp) == (75, 3)
    np.testing.assert_allclose(m.mean, mean[keep], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(m.exp_basis * m.exp_std, exp * 1e-3, rtol=1e-4, atol=1e-6)
    assert m.landmarks68.tolist() == list(range(68))

    np.save(
        tmp_path / "indices.npy", np.arange(0, 72, dtype=np.int32)
    )  # 3DDFA no-neck crop, trimmed space
    m = load_model(tmp_path / "01_MorphableModel.mat")
    assert m.n_vertices == 72 and m.triangles.max() < 72


def _index_file(tmp_path, ids):
    f = tmp_path / "lm.txt"
    f.write_text("# 68 vertex ids\n" + "\n".join(str(i) for i in ids))
    return f


def test_deep3d_front_mat_format(tmp_path):
    mean, basis, tri = _tiny()
    savemat(
        tmp_path / "BFM_model_front.mat",
        {
            "meanshape": mean.reshape(1, -1),
            "idBase": basis,
            "exBase": basis[:, :2],
            "meantex": np.full((1, mean.size), 200.0),
            "texBase": np.zeros((mean.size, 3)),
            "tri": tri + 1,
            "keypoints": np.arange(1, 69)[None],
        },
    )
    m = load_model(tmp_path / "BFM_model_front.mat")
    assert (m.n_id, m.n_exp, m.landmarks68[0]) == (4, 2, 0) and m.has_albedo  # keypoints 1-based
    np.testing.assert_allclose(m.mean, mean * 100, rtol=1e-5)  # decimetres → mm
    np.testing.assert_allclose(m.id_basis * m.id_std, basis * 100, rtol=1e-4, atol=1e-4)


def test_3ddfa_v2_pickle_format(tmp_path):
    mean, basis, tri = _tiny()
    d = {
        "u": (mean * 1000).reshape(-1, 1).astype(np.float32),
        "w_shp": basis.astype(np.float32),
        "w_exp": basis[:, :3].astype(np.float32),
        "keypoints": (3 * np.arange(68)[:, None] + np.arange(3)).reshape(-1),
    }
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
        MorphableModel(
            m.mean,
            m.id_basis,
            m.id_std,
            m.exp_basis,
            m.exp_std,
            m.triangles,
            np.full(68, 10**6, np.int32),
        )


def test_real_3ddfa_files_match_their_published_facts(ddfa_dir, shared_data):
    from scipy.io import loadmat

    m = load_model(ddfa_dir)
    kp = np.load(ddfa_dir / "train.configs" / "keypoints_sim.npy")
    assert m.landmarks68.tolist() == (kp[::3] // 3).tolist()
    assert (
        m.mean[m.landmarks68, 2].argmax() == 30
    )  # iBUG 30, the nose tip, is the frontmost landmark
    tri = loadmat(ddfa_dir / "visualize" / "tri.mat")["tri"]
    assert tri.min() == 1 and tri.max() == 53215  # 1-based on disk ...
    assert m.triangles.min() == 0 and m.triangles.max() == 53214  # ... 0-based here
    # the mesh faces the viewer: counter-clockwise triangles have normals with +z
    v = m.mean[m.triangles]
    nz = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])[:, 2]
    assert (nz > 0).mean() > 0.6
    v2 = shared_data / "3dmm" / "3DDFA_V2" / "configs"
    idx = np.load(v2 / "indices.npy")
    assert idx.size == 38365 and idx.max() < m.n_vertices
    import pickle

    tri_nn = pickle.loads((v2 / "tri.pkl").read_bytes())
    assert tri_nn.shape == (3, 76073) and tri_nn.max() == 38364


def test_real_68_landmark_bfm_basis(ddfa_dir):
    m = load_model(ddfa_dir / "c++" / "weights")
    assert (m.n_vertices, m.n_id, m.n_exp, len(m.triangles)) == (68, 40, 10, 0)
    dense = load_model(ddfa_dir)
    # u_base is the dense mean (u_shp + u_exp) at the 68 keypoints
    np.testing.assert_allclose(m.mean, dense.mean[dense.landmarks68], atol=1e-3)


def test_surrey_landmarks_match_ibug_to_sfm(sfm_dir):
    m = load_model(sfm_dir / "sfm_shape_3448.bin")
    assert (
        m.landmarks68[8] == 33 and m.landmarks68[17] == 225
    )  # "9 = 33", "18 = 225" (1-based iBUG)
    assert m.n_vertices == 3448 and m.exp_names == (
        "anger",
        "disgust",
        "fear",
        "happiness",
        "sadness",
        "surprise",
    )
    v = m.mean[m.triangles]
    assert (
        np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])[:, 2] > 0
    ).mean() > 0.9  # eos winds counter-clockwise (98.8 %)


def test_model_without_landmarks_names_the_option(tmp_path):
    m = load_model("starter")
    arrays = m.to_arrays()
    del arrays["landmarks68"]
    np.savez(tmp_path / "nolm.npz", **arrays)
    with pytest.raises(FormatError, match="--landmarks-index FILE"):
        load_model(tmp_path / "nolm.npz")
    ok = load_model(tmp_path / "nolm.npz", landmarks_index=_index_file(tmp_path, range(100, 168)))
    assert ok.landmarks68[0] == 100


def test_surrey_prior_scale_matches_eos_rescaled_basis(sfm_dir):
    """eos keeps an orthonormal basis + eigenvalues (variances).

    Its draw_sample uses basis * sqrt(eigenvalue).

    Our coefficients multiply the orthonormal columns and id_std = sqrt(eigenvalue), so
    coef = c * id_std reproduces eos's sample for its standard-normal c.
    """
    import eos

    shape = eos.morphablemodel.load_model(str(sfm_dir / "sfm_shape_3448.bin")).get_shape_model()
    m = load_model(sfm_dir / "sfm_shape_3448.bin")
    c = np.random.default_rng(0).normal(size=m.n_id)
    theirs = np.asarray(shape.draw_sample(c.tolist())).reshape(-1, 3)
    np.testing.assert_allclose(m.vertices(c * m.id_std), theirs, atol=1e-2)
    rescaled = np.asarray(shape.get_rescaled_pca_basis())
    np.testing.assert_allclose(m.id_basis * m.id_std, rescaled, atol=1e-4)


def test_sha256_covers_priors_not_the_source_path(tmp_path):
    from dataclasses import replace

    m = load_model("starter")
    assert (
        replace(m, id_std=m.id_std * 2).sha256 != m.sha256
    )  # a different prior is a different model
    assert replace(m, source="/elsewhere/model.npz").sha256 == m.sha256
    assert load_model(m.save(tmp_path / "a.npz")).sha256 == m.sha256


def test_3ddfa_v2_pickle_with_the_real_no_neck_mesh(ddfa_dir, shared_data, tmp_path):
    """The pkl itself is licence-gated: write one in its layout (real BFM mean + no-neck ids)."""
    cfg = shared_data / "3dmm" / "3DDFA_V2" / "configs"
    u = (
        np.load(ddfa_dir / "train.configs" / "u_shp.npy")
        + np.load(ddfa_dir / "train.configs" / "u_exp.npy")
    ).reshape(-1, 3)
    idx = np.load(cfg / "indices.npy")
    remap = -np.ones(len(u), np.int64)
    remap[idx] = np.arange(idx.size)
    kp = remap[np.load(ddfa_dir / "train.configs" / "keypoints_sim.npy")[::3] // 3]
    rng = np.random.default_rng(0)
    d = {
        "u": u[idx].reshape(-1, 1).astype(np.float32),
        "w_shp": rng.normal(size=(3 * idx.size, 4)).astype(np.float32),
        "w_exp": rng.normal(size=(3 * idx.size, 2)).astype(np.float32),
        "keypoints": (3 * kp[:, None] + np.arange(3)).reshape(-1),
    }
    (tmp_path / "bfm_noneck_v3.pkl").write_bytes(pickle.dumps(d))
    (tmp_path / "tri.pkl").symlink_to(
        cfg / "tri.pkl"
    )  # the real [3, 76073] triangle file, not copied
    m = load_model(tmp_path / "bfm_noneck_v3.pkl")
    assert (m.n_vertices, len(m.triangles)) == (38365, 76073)
    v = m.mean[m.triangles]
    nz = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])[:, 2]
    assert (nz > 0).mean() > 0.9  # counter-clockwise seen from the front after the loader's flip
    np.testing.assert_allclose(
        m.mean[m.landmarks68],
        u[np.load(ddfa_dir / "train.configs" / "keypoints_sim.npy")[::3] // 3] * 1e-3,
        rtol=1e-6,
    )


def test_vertices_skip_trailing_zero_modes_and_check_lengths(sfm_dir):
    m = load_model(sfm_dir / "sfm_shape_3448.bin")
    rng = np.random.default_rng(0)
    coef = np.zeros(m.n_id, np.float32)
    coef[:10] = rng.normal(size=10) * m.id_std[:10]  # a fit leaves the tail at zero
    exp = np.r_[0.4, np.zeros(m.n_exp - 1)].astype(np.float32)
    full = (m.mean.reshape(-1) + m.id_basis @ coef + m.exp_basis @ exp).reshape(-1, 3)
    np.testing.assert_allclose(m.vertices(coef, exp), full, atol=1e-4)
    np.testing.assert_array_equal(m.vertices(np.zeros(m.n_id)), m.mean)
    with pytest.raises(ValueError, match="id_coef"):
        m.vertices(np.zeros(m.n_id + 1))


def test_vertices_reuse_is_exact_and_returns_private_copies(sfm_dir, monkeypatch):
    m = load_model(sfm_dir / "sfm_shape_3448.bin")
    rng = np.random.default_rng(1)
    coef = np.zeros(m.n_id, np.float32)
    coef[:20] = rng.normal(size=20) * m.id_std[:20]
    strided = (m.mean.reshape(-1) + m.id_basis[:, :20] @ coef[:20]).reshape(-1, 3)
    first = m.vertices(coef)
    np.testing.assert_array_equal(first, strided)  # a small basis: the strided product, as before
    first += 1000.0  # a caller scribbling on its result changes nothing for the next one
    np.testing.assert_array_equal(m.vertices(coef), strided)
    other = coef.copy()
    other[0] += 1.0
    assert not np.array_equal(m.vertices(other), strided)
    np.testing.assert_array_equal(m.vertices(coef), strided)
    big = dataclasses.replace(m)  # a fresh instance (no caches) taken as a large basis
    monkeypatch.setattr("deocc_core.morphable.model.CONTIGUOUS_COLUMNS_BYTES", 0)
    np.testing.assert_allclose(big.vertices(coef), strided, atol=1e-4)
    assert big.__dict__["_basis_columns_cache"][("id", 20)].flags.c_contiguous
