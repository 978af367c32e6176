"""Shape from shading: recovers known detail, stays near the coarse shape on a real face."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from deocc_core.errors import ShapeError
from deocc_core.face.prepare import FaceInputConfig, prepare_face
from deocc_core.imageio import read_image
from deocc_core.landmarks.readers import find_annotation, read_annotation
from deocc_core.morphable.camera import project
from deocc_core.morphable.model import load_model
from deocc_core.occluders.composite import composite_occluder
from deocc_core.recon.integrate import depth_gradients, normals_from_gradients
from deocc_core.recon.mesh import depth_mesh
from deocc_core.recon.sfs import SfSConfig, refine_face, shape_from_shading
from deocc_core.render.obj import read_obj, write_obj
from deocc_core.render.shading import sh_basis

LIGHT = np.tile(np.array([0.55, 0.15, 0.35, 0.3, 0, 0, 0, 0, 0], np.float32)[:, None], 3)


def _scene(h: int = 96):
    """A coarse sphere cap, the same cap with a ridge and a dent (the 'true' detail), the
    photo of the truth under a known light and albedo."""
    y, x = np.mgrid[0:h, 0:h].astype(np.float64) - (h - 1) / 2
    mask = x**2 + y**2 < (0.42 * h) ** 2
    cap = np.sqrt((0.8 * h) ** 2 - x**2 - y**2)
    detail = 2.5 * np.exp(-((x - 8) ** 2) / (2 * 3.0**2)) * (np.abs(y) < 20)
    detail -= 2.0 * np.exp(-((x + 15) ** 2 + (y - 10) ** 2) / (2 * 4.0**2))
    coarse = np.where(mask, cap, -np.inf)
    true = np.where(mask, cap + detail, -np.inf)
    n_true = normals_from_gradients(*depth_gradients(true))
    albedo = np.full((h, h, 3), 0.6, np.float32)
    photo = albedo * (sh_basis(n_true.reshape(-1, 3)) @ LIGHT).reshape(h, h, 3)
    n_coarse = normals_from_gradients(*depth_gradients(coarse))
    return mask, coarse, true, n_coarse, albedo, np.clip(photo, 0, 1)


def test_sfs_recovers_known_detail_from_shading():
    mask, coarse, true, n0, albedo, photo = _scene()
    # noise-free, exact light and albedo: the data can be trusted far (small coupling, long reach)
    cfg = SfSConfig(iterations=30, coupling=0.005, smoothing_px=0.5, reach_px=80)
    r = shape_from_shading(photo, coarse, n0, albedo, LIGHT, mask.astype(np.float32), cfg)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0

    def err(z):
        e = z[inner] - true[inner]
        return float(np.sqrt(((e - np.median(e)) ** 2).mean()))

    assert err(r.depth) < 0.4 * err(coarse)  # most of the missing detail recovered (0.26x)
    assert r.residual < 0.5 * r.residual_coarse
    assert np.isneginf(r.depth[~mask]).all() and np.isfinite(r.depth[mask]).all()
    np.testing.assert_allclose(np.linalg.norm(r.normals[mask], axis=-1), 1, atol=1e-5)
    # the albedo under the refined normals is the true one where the shading is explained
    assert abs(float(np.median(r.albedo[inner])) - 0.6) < 0.02


def test_sfs_without_data_keeps_the_coarse_shape():
    mask, coarse, _, n0, albedo, photo = _scene()
    r = shape_from_shading(photo, coarse, n0, albedo, LIGHT, np.zeros(mask.shape, np.float32))
    assert np.abs(r.depth[mask] - coarse[mask]).max() < 1e-3


def test_sfs_shapes_and_errors():
    mask, coarse, _, n0, albedo, photo = _scene(48)
    r = shape_from_shading(
        (photo * 255).astype(np.uint8), coarse, n0, albedo, LIGHT, mask.astype(np.float32)
    )
    assert r.depth.dtype == r.normals.dtype == r.albedo.dtype == np.float32
    assert r.depth.shape == (48, 48) and r.normals.shape == r.albedo.shape == (48, 48, 3)
    with pytest.raises(ShapeError, match="light"):
        shape_from_shading(photo, coarse, n0, albedo, LIGHT[:4], mask.astype(np.float32))
    with pytest.raises(ShapeError, match="normals"):
        shape_from_shading(photo, coarse, n0[:-1], albedo, LIGHT, mask.astype(np.float32))


@pytest.fixture(scope="module")
def real_face(aflw_dir, sfm_dir):
    """A real AFLW2000-3D face (human landmarks), 256 px crop, fitted with the Surrey model."""
    m = load_model(sfm_dir / "sfm_shape_3448.bin")
    path = aflw_dir / "image00050.jpg"
    face = prepare_face(
        read_image(path), read_annotation(find_annotation(path)), m, FaceInputConfig(size=256)
    )
    return m, face


def test_real_face_detail_stays_near_the_coarse_shape_and_round_trips_as_obj(real_face, tmp_path):
    m, face = real_face
    p = face.fit.params
    d = refine_face(face.crop, m, p, face.render_result.raster)
    mm = p.pose.scale  # px of depth per model mm
    inside = np.isfinite(d.coarse_depth)
    assert (np.isfinite(d.sfs.depth) == inside).all()
    diff = (d.sfs.depth[inside] - d.coarse_depth[inside]) / mm
    diff = np.abs(diff - np.median(diff))  # depth's offset is free (weak perspective)
    # detail, not a new face: the median pixel moves ~1 mm (measured 1.1), 95 % < 5 mm (3.8)
    assert np.median(diff) < 1.5 and np.percentile(diff, 95) < 5.0
    assert 0.0 < d.sfs.residual < d.sfs.residual_coarse  # the shading is better explained
    assert d.light.inlier_fraction > 0.5

    mesh = depth_mesh(d.sfs.depth, p.pose)
    assert len(mesh.vertices) == inside.sum() and len(mesh.triangles) > 1.5 * inside.sum()
    path = write_obj(tmp_path / "detail.obj", mesh.vertices, mesh.triangles)
    v, t, _ = read_obj(path)
    np.testing.assert_allclose(v, mesh.vertices, atol=1e-4)
    np.testing.assert_array_equal(t, mesh.triangles)
    # the mesh is in the coarse mesh's model space: the fitted camera maps it back onto its pixels
    back = project(v, p.pose)
    np.testing.assert_allclose(back[:, 0], mesh.pixels[:, 1], atol=0.01)
    np.testing.assert_allclose(back[:, 1], mesh.pixels[:, 0], atol=0.01)
    np.testing.assert_allclose(
        back[:, 2], d.sfs.depth[mesh.pixels[:, 0], mesh.pixels[:, 1]], atol=0.01
    )


def test_robust_weights_keep_the_coarse_shape_under_an_occluder(real_face):
    m, face = real_face
    occ = composite_occluder(
        face.crop,
        face.landmarks,
        np.random.default_rng(1),
        face_mask=face.face_mask,
    )
    p, raster = face.fit.params, face.render_result.raster
    plain = refine_face(occ.image, m, p, raster)
    robust = refine_face(occ.image, m, p, raster, replace(SfSConfig(), robust=True))
    under = (occ.occ_mask > 127) & np.isfinite(plain.coarse_depth)
    assert under.sum() > 500

    def moved(d):
        moved = d.sfs.depth[under] - d.coarse_depth[under]
        return float(np.median(np.abs(moved - np.median(moved))))

    assert moved(robust) < moved(plain)
