"""The renderer on the real BFM mean mesh (3DDFA u_shp + u_exp, tri.mat): winding, occlusion."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.io import loadmat

from deocc_core.morphable.camera import project, rotation_matrix
from deocc_core.morphable.params import Pose
from deocc_core.render.raster import interpolate, rasterize, vertex_visibility
from deocc_core.render.shading import DEFAULT_SH, shade_sh, vertex_normals


@pytest.fixture(scope="module")
def bfm(ddfa_dir: Path):
    """Mean BFM vertices [53215, 3] (model units, centred), tri.mat triangles 0-based AS STORED."""
    v = (
        np.load(ddfa_dir / "train.configs" / "u_shp.npy")
        + np.load(ddfa_dir / "train.configs" / "u_exp.npy")
    ).reshape(-1, 3)
    tri = loadmat(ddfa_dir / "visualize" / "tri.mat")["tri"].T.astype(np.int32) - 1
    return (v - v.mean(0)).astype(np.float32), tri


def _pose(v, yaw_deg):
    return Pose(0.55 * 256 / float(np.ptp(v[:, 0])), 0.0, np.radians(yaw_deg), 0.0, 127.5, 127.5)


def test_bfm_tri_mat_is_clockwise_and_flipped_it_survives_culling(bfm):
    v, tri = bfm
    p = project(v, _pose(v, 0))
    everything = rasterize(p, tri, 256, 256, cull_backfaces=False).covered.sum()
    as_stored = rasterize(p, tri, 256, 256).covered.sum()
    flipped = rasterize(p, tri[:, ::-1], 256, 256).covered.sum()
    # 3DDFA's tri.mat is clockwise seen from the front: culling removes the face; flipping fixes it
    assert as_stored < 0.1 * everything and flipped >= 0.999 * everything


@pytest.mark.parametrize("yaw", [0, 45])
def test_bfm_mean_face_renders_as_one_face_shaped_blob(bfm, yaw, tmp_path):
    v, tri = bfm
    tri = tri[:, ::-1].copy()
    pose = _pose(v, yaw)
    p = project(v, pose)
    r = rasterize(p, tri, 256, 256)
    n_labels, _ = cv2.connectedComponents(r.mask)
    assert n_labels == 2  # background + one face
    ys, xs = np.nonzero(r.mask)
    h, w = np.ptp(ys) + 1, np.ptp(xs) + 1
    assert (
        0.15 < r.covered.mean() < 0.4 and 1.0 < h / w < 1.6
    )  # taller than wide, a face not a frame
    n = vertex_normals(v, tri) @ rotation_matrix(pose.pitch, pose.yaw, pose.roll).T.astype(
        np.float32
    )
    img = interpolate(r, shade_sh(np.full_like(v, 0.7), n, DEFAULT_SH))
    assert img[r.covered].min() > 0.05  # lit everywhere from the front: normals point outward
    cv2.imwrite(str(tmp_path / f"bfm_yaw{yaw}.png"), (img * 255).astype(np.uint8))


def test_bfm_nose_hides_the_far_cheek_at_45_degrees_yaw(bfm):
    v, tri = bfm
    tri = tri[:, ::-1].copy()
    p = project(v, _pose(v, 45))
    r = rasterize(p, tri, 256, 256)
    tip = int(np.argmax(v[:, 2]))
    nose = np.linalg.norm(v - v[tip], axis=1) < 0.15 * np.ptp(v[:, 0])
    # far side for positive yaw: model +x (the nose turns to image +x, the +x cheek turns away)
    cheek = (
        (v[:, 0] > 0.1 * np.ptp(v[:, 0]))
        & (np.abs(v[:, 1] - v[tip, 1]) < 0.1 * np.ptp(v[:, 1]))
        & (v[:, 2] < v[tip, 2] - 0.2 * np.ptp(v[:, 2]))
    )
    x, y = np.rint(p[cheek, 0]).astype(int), np.rint(p[cheek, 1]).astype(int)
    on_nose = nose[tri[r.tri_id[y, x]]].any(1) & (r.tri_id[y, x] >= 0)
    assert on_nose.sum() > 20  # cheek vertices that project where the nose won the Z-buffer
    assert (r.depth[y, x][on_nose] > p[cheek, 2][on_nose]).all()
    vis = vertex_visibility(r, p)
    # hidden; a few (<1%) belong to cheek triangles that still win a pixel beside the nose's edge
    assert vis[np.flatnonzero(cheek)[on_nose]].mean() < 0.01 and vis[tip]
