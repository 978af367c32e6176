"""Depth-map meshes, mesh pictures, and the per-face files of ``deocc-infer --mesh --detail``."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from deocc_core.face.prepare import FaceInputConfig, prepare_face
from deocc_core.imageio import read_image
from deocc_core.landmarks.readers import read_annotation
from deocc_core.morphable.model import load_model
from deocc_core.morphable.params import Pose
from deocc_core.occluders.composite import composite_occluder
from deocc_core.recon.export import MeshConfig, write_face_meshes
from deocc_core.recon.mesh import depth_mesh
from deocc_core.recon.mesh_view import mesh_view, render_mesh
from deocc_core.render.obj import read_obj
from deocc_core.render.raster import rasterize


@pytest.mark.parametrize("h,w", [(5, 7), (16, 16)])
def test_depth_mesh_of_a_full_plane_faces_the_camera(h, w):
    pose = Pose(2.0, 0.0, 0.0, 0.0, w / 2, h / 2)
    m = depth_mesh(np.full((h, w), 3.0), pose)
    assert m.vertices.shape == (h * w, 3) and m.triangles.shape == (2 * (h - 1) * (w - 1), 3)
    assert m.vertices.dtype == np.float32 and m.triangles.dtype == np.int32
    # re-projected, every triangle is front-facing and the mesh covers its pixels' span
    proj = np.stack([m.pixels[:, 1], m.pixels[:, 0], np.full(h * w, 3.0)], 1).astype(np.float32)
    r = rasterize(proj, m.triangles, h, w, cull_backfaces=True)
    assert r.covered[: h - 1, : w - 1].all()


def test_depth_mesh_drops_jumps_and_keeps_corners():
    z = np.zeros((6, 6))
    z[:, 3:] = 50.0  # a step: no triangle across it
    z[0, 0] = -np.inf  # a missing corner: its block keeps one triangle
    m = depth_mesh(z, Pose(1.0, 0, 0, 0, 0, 0))
    spans = np.ptp(z[m.pixels[:, 0], m.pixels[:, 1]][m.triangles], axis=1)
    assert (spans == 0).all()
    assert len(m.triangles) == 2 * 5 * 2 + 2 * 5 * 2 - 1


def test_mesh_pictures_frame_meshes_alike():
    starter = load_model("starter")
    v = starter.vertices()
    view = mesh_view(v, yaw_deg=30, size=96)
    grey = render_mesh(v, starter.triangles, view)
    both = render_mesh(v, starter.triangles, view, colors=np.tile([0.2, 0.4, 0.9], (len(v), 1)))
    assert grey.shape == (96, 96, 3) and both.shape == (96, 192, 3)
    np.testing.assert_array_equal(both[:, :96], grey)
    face = (grey != 255).any(-1)
    assert 0.2 < face.mean() < 0.9  # framed: the face fills the panel, inside the margin
    assert not face[:3].any() and not face[-3:].any()
    colour = np.abs(both[:, 96:][face].astype(int) - [51, 102, 230]).max(-1) <= 1
    assert colour.mean() > 0.99


@pytest.fixture(scope="module")
def sfm_face(sfm_dir, ibug_pts_image):
    m = load_model(sfm_dir / "sfm_shape_3448.bin")
    img, pts = ibug_pts_image
    f = prepare_face(read_image(img), read_annotation(pts), m, FaceInputConfig(size=128))
    occ = composite_occluder(f.crop, f.landmarks, np.random.default_rng(0), face_mask=f.face_mask)
    return m, replace(f, crop=occ.image), f.crop


def test_write_face_meshes_textured_detailed_and_compared(sfm_face, tmp_path):
    m, face, clean = sfm_face
    cfg = MeshConfig(detail=True, compare_occluded=True)
    paths = write_face_meshes(tmp_path / "p_face0", face, clean, m, cfg)
    names = {p.name for p in paths}
    for tag in ("", "_occluded"):
        for suffix in (".obj", ".mtl", ".png", "_view.png", "_detail.obj", "_detail_view.png"):
            assert f"p_face0{tag}{suffix}" in names
    assert "p_face0_compare.png" in names and all(p.is_file() for p in paths)
    assert "map_Kd p_face0.png" in (tmp_path / "p_face0.mtl").read_text()
    v, t, _ = read_obj(tmp_path / "p_face0.obj")
    assert v.shape == (m.n_vertices, 3) and len(t) == len(m.triangles)
    dv, dt, dc = read_obj(tmp_path / "p_face0_detail.obj")
    assert len(dv) == (face.face_mask > 0).sum() and dc is not None
    sheet = read_image(tmp_path / "p_face0_compare.png")
    assert sheet.shape == (256, 128 * 5, 3)  # 2 rows: crop | coarse x2 | detail x2


def test_models_without_uv_get_vertex_colours(tmp_path):
    m = load_model("starter")
    lm = m.mean[m.landmarks68, :2] * [1, -1] + 150
    f = prepare_face(np.full((300, 300, 3), 90, np.uint8), lm, m, FaceInputConfig(size=64))
    paths = write_face_meshes(tmp_path / "s", f, f.render, m)
    assert [p.name for p in paths] == ["s.obj", "s_view.png"]
    _, _, colors = read_obj(paths[0])
    assert colors is not None and colors.shape == (m.n_vertices, 3)


def test_cli_mesh_detail_compare(ibug_pts_image, tiny_run, tmp_path):
    """``deocc-infer --mesh --detail --compare-occluded`` writes the Fig. 9 files per face."""
    from typer.testing import CliRunner

    from tools.deocc_infer import app

    img, pts = ibug_pts_image
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(img, photos / f"a{img.suffix}")
    shutil.copy(pts, photos / "a.pts")
    out = tmp_path / "out"
    args = [str(photos), "--ckpt", str(tiny_run), "--out", str(out), "--landmarks-from", "pts"]
    r = CliRunner().invoke(
        app, args + ["--mesh", "--detail", "--compare-occluded", "--device", "cpu"]
    )
    assert r.exit_code == 0, r.output
    for name in ("a_face0.obj", "a_face0_detail.obj", "a_face0_occluded_detail.obj"):
        assert (out / name).is_file()
    assert read_image(out / "a_face0_compare.png").shape[0] == 2 * 64
