"""Rasterizer coverage and depth order, the face render and its mask on a real fit, OBJ."""

from __future__ import annotations

import cv2
import numpy as np
from scipy.io import loadmat

from deocc_core.morphable.fit import fit_landmarks
from deocc_core.morphable.model import load_model
from deocc_core.morphable.params import FitParams, Pose
from deocc_core.render import read_obj, render_face, write_obj


def test_render_of_a_real_fit_covers_the_face(sfm_dir, aflw_dir, tmp_path):
    m = load_model(sfm_dir / "sfm_shape_3448.bin")
    img = cv2.imread(str(aflw_dir / "image00050.jpg"))[:, :, ::-1]
    lm = loadmat(aflw_dir / "image00050.mat")["pt3d_68"][:2].T - 1
    fit = fit_landmarks(m, lm)
    r = render_face(m, fit.params, *img.shape[:2], background=img)
    inner = lm[17:].round().astype(int)  # brows, eyes, nose, mouth lie on the face
    assert (r.mask[inner[:, 1], inner[:, 0]] == 255).mean() > 0.95
    assert r.mask.mean() / 255 < 0.6
    cv2.imwrite(str(tmp_path / "overlay.png"), r.image[:, :, ::-1])


def test_far_side_is_hidden_on_a_profile():
    m = load_model("starter")
    r = render_face(
        m,
        FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), Pose(0.8, 0, np.radians(70), 0, 128, 128)),
        256,
        256,
    )
    lm_vis = r.visible[m.landmarks68]
    assert (
        lm_vis[36] and not lm_vis[45]
    )  # nose turns to +x: the subject's right side faces the camera


def test_obj_round_trip(tmp_path):
    m = load_model("starter")
    path = write_obj(tmp_path / "face.obj", m.mean, m.triangles, m.albedo())
    v, t, c = read_obj(path)
    assert v.shape == m.mean.shape and (t == m.triangles).all()
    np.testing.assert_allclose(v, m.mean, atol=1e-4)
    np.testing.assert_allclose(c, m.albedo(), atol=1e-4)
    assert not list(tmp_path.glob("*.partial"))
    uv = (m.mean[:, :2] - m.mean[:, :2].min(0)) / np.ptp(m.mean[:, :2], 0)
    tex = np.full((8, 8, 3), 200, np.uint8)
    p2 = write_obj(tmp_path / "tex.obj", m.mean, m.triangles, uv=uv, texture=tex)
    v2, t2, c2 = read_obj(p2)
    assert (
        c2 is None
        and (t2 == m.triangles).all()
        and (cv2.imread(str(tmp_path / "tex.png")) == 200).all()
    )
    assert "map_Kd tex.png" in (tmp_path / "tex.mtl").read_text()


def test_silhouette_matches_the_convex_hull_of_projected_vertices():
    m = load_model("starter")
    for yaw in (0, 45):
        r = render_face(
            m,
            FitParams(
                np.zeros(m.n_id), np.zeros(m.n_exp), Pose(0.8, 0.1, np.radians(yaw), 0, 128, 128)
            ),
            256,
            256,
        )
        hull = np.zeros((256, 256), np.uint8)
        cv2.fillConvexPoly(
            hull, cv2.convexHull(r.projected[:, :2].astype(np.float32)).astype(np.int32)[:, 0], 255
        )
        inside = (r.mask > 0) & (hull > 0)
        assert (
            inside.sum() >= 0.99 * (r.mask > 0).sum()
            and (r.mask > 0).sum() > 0.9 * (hull > 0).sum()
        )


def test_depth_orders_nose_before_cheeks_on_a_turned_head():
    m = load_model("starter")
    r = render_face(
        m,
        FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), Pose(0.8, 0, np.radians(30), 0, 128, 128)),
        256,
        256,
    )
    z = r.projected[:, 2]
    lm = m.landmarks68
    assert (
        z[lm[30]] > z[lm[0]] and z[lm[30]] > z[lm[16]] and z[lm[2]] > z[lm[14]]
    )  # near cheek (subject right) before far


def test_every_loaded_model_is_front_facing_so_culling_keeps_the_face(sfm_dir, ddfa_dir):
    from deocc_core.morphable.camera import project
    from deocc_core.render.raster import rasterize

    for m in (
        load_model("starter"),
        load_model(sfm_dir / "sfm_shape_3448.bin"),
        load_model(ddfa_dir),
    ):
        for yaw in (0, 40):
            p = project(
                m.mean,
                Pose(0.6 * 256 / float(np.ptp(m.mean[:, 0])), 0, np.radians(yaw), 0, 128, 128),
            )
            culled = rasterize(p, m.triangles, 256, 256).covered.sum()
            assert (
                culled
                >= 0.995 * rasterize(p, m.triangles, 256, 256, cull_backfaces=False).covered.sum()
                > 0
            )


def _composed(m, params, h, w, background=None, sh=None, colors=None):
    """render_face written as the plain composition of the public functions (the reference)."""
    from deocc_core.morphable.camera import project, rotation_matrix
    from deocc_core.render import interpolate, rasterize, shade_sh, vertex_normals
    from deocc_core.render.face import SKIN_GREY
    from deocc_core.render.shading import DEFAULT_SH

    verts = m.vertices(params.id_coef, params.exp_coef)
    proj = project(verts, params.pose)
    r = rasterize(proj, m.triangles, h, w)
    if colors is None:
        rot = rotation_matrix(params.pose.pitch, params.pose.yaw, params.pose.roll)
        albedo = m.albedo() if m.has_albedo else SKIN_GREY
        n = vertex_normals(verts, m.triangles)
        colors = shade_sh(albedo, n, DEFAULT_SH if sh is None else sh, rotation=rot)
    out = np.zeros((h, w, 3), np.uint8) if background is None else background.copy()
    cov = r.covered
    out[cov] = np.clip(interpolate(r, colors)[cov] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out, r, proj


def test_render_face_equals_the_composition_of_public_functions(sfm_dir, aflw_dir):
    # render_face fuses the stages and shades only the vertices it uses: same pixels
    m = load_model(sfm_dir / "sfm_shape_3448.bin")
    img = cv2.imread(str(aflw_dir / "image00050.jpg"))[:, :, ::-1].copy()
    fit = fit_landmarks(m, loadmat(aflw_dir / "image00050.mat")["pt3d_68"][:2].T - 1)
    rng = np.random.default_rng(0)
    sh = (np.eye(9)[0][:, None] * 0.7 + rng.normal(size=(9, 3)) * 0.2).astype(np.float32)
    colors = rng.uniform(0, 1, (m.n_vertices, 3))
    for kw in ({}, {"background": img, "sh": sh}, {"colors": colors}):
        got = render_face(m, fit.params, *img.shape[:2], **kw)
        want, r, proj = _composed(m, fit.params, *img.shape[:2], **kw)
        assert np.abs(got.image.astype(int) - want).max() <= 1  # float rounding at most
        assert (got.image != want).mean() < 1e-4
        np.testing.assert_array_equal(got.mask, r.mask)
        np.testing.assert_array_equal(got.tri_id, r.tri_id)
        np.testing.assert_array_equal(got.projected, proj)
    from deocc_core.render import vertex_visibility

    np.testing.assert_array_equal(got.visible, vertex_visibility(r, proj))
    assert got.raster.bary.shape == img.shape[:2] + (3,)


def test_render_face_on_the_bfm_mean_equals_the_composition(ddfa_dir):
    # the vectorised shading of every vertex gives the pixels of the public functions
    m = load_model(ddfa_dir)
    for yaw in (0, 45):
        s = 0.55 * 256 / float(np.ptp(m.mean[:, 0]))
        pose = Pose(s, 0.1, np.radians(yaw), 0.0, 127.5, 127.5)
        params = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), pose)
        got = render_face(m, params, 256, 256)
        want, r, _ = _composed(m, params, 256, 256)
        assert np.abs(got.image.astype(int) - want).max() <= 1
        assert (got.image != want).any(-1).mean() < 1e-4
        np.testing.assert_array_equal(got.tri_id, r.tri_id)
        assert 10000 < (got.mask == 255).sum() < 0.5 * 256 * 256  # a face, not the frame


def test_covered_to_uint8_is_the_numpy_expression_bit_for_bit(ddfa_dir):
    from deocc_core.morphable.camera import project
    from deocc_core.render import interpolate, rasterize
    from deocc_core.render.face import covered_to_uint8

    m = load_model(ddfa_dir)
    p = project(m.mean, Pose(0.55 * 128 / float(np.ptp(m.mean[:, 0])), 0, 0.3, 0, 64, 64))
    r = rasterize(p, m.triangles, 128, 128)
    cols = np.random.default_rng(0).uniform(-0.1, 1.1, (m.n_vertices, 3)).astype(np.float32)
    cols[::7] = np.float32(254.5 / 255)  # halfway between two levels
    values = interpolate(r, cols)
    want = np.full((128, 128, 3), 7, np.uint8)
    want[r.covered] = np.clip(values[r.covered] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    got = np.full((128, 128, 3), 7, np.uint8)
    covered_to_uint8(values, r.tri_id, got)
    np.testing.assert_array_equal(got, want)
