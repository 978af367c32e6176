"""SH light + skin colour estimation: synthetic references, robustness, real occluded faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deocc_core.errors import InputError, ShapeError
from deocc_core.face.align import align_face
from deocc_core.landmarks.readers import find_annotation, read_annotation
from deocc_core.morphable.camera import project, rotation_matrix
from deocc_core.morphable.fit import fit_landmarks
from deocc_core.morphable.model import load_model
from deocc_core.occluders.assets import load_asset_packs
from deocc_core.occluders.classes import OccluderClass
from deocc_core.occluders.composite import composite_occluder
from deocc_core.render.light import (
    LightConfig,
    estimate_face_light,
    estimate_light,
    face_samples,
    weighted_quantile,
)
from deocc_core.render.raster import rasterize
from deocc_core.render.shading import light_sh, sh_basis, vertex_normals
from deocc_core.render.skin import REFERENCE_SKIN, skin_field
from deocc_core.synth.sources import read_image


def _front_normals(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3))
    v[:, 2] = np.abs(v[:, 2]) + 0.3  # a face shows the front hemisphere only
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _irradiance(normals: np.ndarray, est) -> np.ndarray:
    return sh_basis(normals) @ est.coloured_sh


def test_weighted_quantile_matches_numpy_on_unit_weights():
    x = np.random.default_rng(0).normal(size=(101, 3))
    np.testing.assert_allclose(weighted_quantile(x, np.ones(101)), np.median(x, 0))
    assert weighted_quantile(x[:, 0], np.ones(101), 0.0) == x[:, 0].min()


@pytest.mark.parametrize("n", [200, 3000, 9000])
def test_recovers_a_known_coloured_light_and_gain(n):
    normals = _front_normals(n)
    albedo = np.broadcast_to(REFERENCE_SKIN, (n, 3))
    light = light_sh([0.4, 0.6, 0.7], 0.55, 0.45)
    truth = 0.9 * np.outer(light, [1.1, 1.0, 0.8])  # warm skin
    photo = albedo * (sh_basis(normals) @ truth)
    photo = photo + np.random.default_rng(1).normal(0, 0.01, photo.shape)
    est = estimate_light(photo, normals, albedo)
    assert est.sh.shape == (9, 3) and est.gain.shape == (3,) and est.weights.shape == (n,)
    assert est.sh.dtype == np.float32 and est.albedo_coef is None
    rel = np.abs(_irradiance(normals, est) - sh_basis(normals) @ truth).mean() / truth[0].mean()
    assert rel < 0.02
    assert est.gain[0] > est.gain[1] > est.gain[2]  # the skin's warmth goes to the gain
    assert abs(float(est.gain.mean()) - 1.0) < 1e-5
    assert est.inlier_fraction > 0.9


@pytest.mark.parametrize("occluder", [[0.15, 0.35, 0.85], [0.95, 0.95, 0.95], [0.05, 0.05, 0.05]])
def test_an_occluder_over_40_percent_of_the_samples_does_not_pull_the_light(occluder):
    n = 4000
    normals = _front_normals(n, 2)
    albedo = np.broadcast_to(REFERENCE_SKIN, (n, 3))
    truth = np.outer(light_sh([-0.5, 0.3, 0.8], 0.6, 0.4), [1.0, 0.95, 0.9])
    clean = albedo * (sh_basis(normals) @ truth)
    photo = clean.copy()
    lower = normals[:, 1] < np.quantile(normals[:, 1], 0.4)  # the lower 40 %, like a mask
    photo[lower] = occluder
    est = estimate_light(photo, normals, albedo)
    rel = np.abs(_irradiance(normals, est) - sh_basis(normals) @ truth).mean() / truth[0].mean()
    assert rel < 0.03
    assert est.weights[lower].max() == 0 and est.weights[~lower].mean() > 0.9


def test_albedo_coefficients_are_recovered_on_the_starter_model():
    m = load_model("starter")
    n = vertex_normals(m.vertices(), m.triangles)
    k = len(m.albedo_std)
    coef = np.zeros(k, np.float32)
    coef[0] = 1.0 * m.albedo_std[0]  # "darker" skin
    albedo = m.albedo(coef)
    truth = np.repeat(light_sh([0.2, 0.3, 1.0], 0.6, 0.4)[:, None], 3, 1)
    photo = albedo * (sh_basis(n) @ truth)
    basis = m.albedo_basis.reshape(m.n_vertices, 3, k)
    est = estimate_light(
        photo, n, m.albedo(), albedo_basis=basis, albedo_std=m.albedo_std, config=LightConfig()
    )
    assert est.albedo_coef is not None and est.albedo_coef.shape == (k,)
    refit = np.clip(m.albedo(est.albedo_coef) * est.gain, 0, 1)
    shaded = refit * (sh_basis(n) @ est.sh)
    assert np.abs(shaded - photo).mean() < 0.01


def test_exceptions():
    n = _front_normals(100)
    with pytest.raises(InputError, match="usable face samples"):
        estimate_light(np.full((100, 3), 0.5), n, REFERENCE_SKIN, np.zeros(100))
    with pytest.raises(InputError, match="usable"):  # saturated everywhere
        estimate_light(np.ones((100, 3)), n, REFERENCE_SKIN)
    with pytest.raises(ShapeError, match="normals"):
        estimate_light(np.full((100, 3), 0.5), n[:50], REFERENCE_SKIN)
    with pytest.raises(ShapeError, match="weights"):
        estimate_light(np.full((100, 3), 0.5), n, REFERENCE_SKIN, np.ones(99))


def test_skin_field_marks_the_face_parts(sfm_dir):
    for m in (load_model("starter"), load_model(sfm_dir / "sfm_shape_3448.bin")):
        f = skin_field(m)
        lm = m.landmarks68
        assert f.albedo.shape == (m.n_vertices, 3) and f.weights.shape == f.prior.shape

        def near(i, m=m):
            return np.linalg.norm(m.mean[:, :2] - m.mean[i, :2], axis=1).argmin()

        eye_centre = np.linalg.norm(m.mean[:, :2] - m.mean[lm[36:42], :2].mean(0), axis=1).argmin()
        assert f.weights[eye_centre] == 0 and f.weights[near(lm[62])] < 0.5  # eye, lips
        forehead = np.linalg.norm(m.mean[:, :2] - m.mean[lm[27], :2] - [0, 40], axis=1).argmin()
        assert f.prior[forehead] == 1 and f.prior[near(lm[57])] < 0.5 and f.weights[forehead] == 1
        if not m.has_albedo:  # the derived colours: red lips, dark brows, skin between
            lips, brow = f.albedo[near(lm[51])], f.albedo[near(lm[19])]
            assert lips[0] - lips[1] > REFERENCE_SKIN[0] - REFERENCE_SKIN[1]
            assert brow.sum() < 0.5 * REFERENCE_SKIN.sum()
            np.testing.assert_allclose(f.albedo[forehead], REFERENCE_SKIN, atol=1e-6)
        assert skin_field(m) is f  # cached on the model


# ---------------------------------------------------------------- real faces


def _human_labelled(shared_data: Path) -> list[Path]:
    d = shared_data / "faces"
    return sorted((d / "PRNet_AFLW2000").glob("*.jpg")) + [
        d / "face3d_300WLP" / "IBUG_image_008_1_0.jpg",
        d / "eos_examples" / "image_0010.png",
    ]


@pytest.fixture(scope="module")
def fitted_faces(shared_data, sfm_dir):
    """The 15 human-labelled faces, 256 px crops, fitted with the Surrey model."""
    m = load_model(sfm_dir / "sfm_shape_3448.bin")
    out = []
    for path in _human_labelled(shared_data):
        crop = align_face(read_image(path), read_annotation(find_annotation(path)), 256)
        p = fit_landmarks(m, crop.landmarks).params
        v = m.vertices(p.id_coef, p.exp_coef)
        rot = rotation_matrix(p.pose.pitch, p.pose.yaw, p.pose.roll).astype(np.float32)
        normals = vertex_normals(v, m.triangles) @ rot.T
        raster = rasterize(project(v, p.pose), m.triangles, 256, 256)
        out.append((path.name, crop, raster, normals))
    return m, out


def test_real_faces_light_and_skin_colour_survive_pasted_occluders(fitted_faces, occluders_dir):
    """Masks, sunglasses and hands (ours and the real cut-outs) over the 15 human-labelled
    faces: the skin colour (gain) and the light's irradiance over the face barely move.
    """
    m, faces = fitted_faces
    field = skin_field(m)
    packs = load_asset_packs(occluders_dir)
    classes = [OccluderClass.MASK, OccluderClass.SUNGLASSES, OccluderClass.HAND]
    dgain, dlight = [], []
    for i, (_, crop, raster, normals) in enumerate(faces):
        kw = dict(vertex_prior=field.prior)
        clean, s = estimate_face_light(
            crop.image, raster, normals, field.albedo, field.weights, **kw
        )
        e0 = _irradiance(s.normals, clean)
        for k, cls in enumerate(classes):
            occ = composite_occluder(
                crop.image,
                crop.landmarks,
                np.random.default_rng([i, k]),
                classes=[cls],
                face_mask=raster.mask,
                packs=packs,
            )
            est, _ = estimate_face_light(
                occ.image, raster, normals, field.albedo, field.weights, **kw
            )
            dgain.append(np.abs(est.gain - clean.gain).max())
            dlight.append(np.abs(_irradiance(s.normals, est) - e0).mean() / e0.mean())
    dgain, dlight = np.array(dgain), np.array(dlight)
    # measured (SFM, 45 pairs): gain |Δ| median 0.005, max 0.09; irradiance |Δ| median 0.04
    assert np.median(dgain) < 0.02 and dgain.max() < 0.2
    assert np.median(dlight) < 0.08 and np.percentile(dlight, 75) < 0.2


def test_real_faces_render_colour_follows_the_photo_skin(fitted_faces):
    """Across the shared photos (colour and grey ones), the estimated skin colour times the
    light, rendered over M, correlates with the photo's own skin colour.
    """
    m, faces = fitted_faces
    field = skin_field(m)
    photo_mean, render_mean = [], []
    for _, crop, raster, normals in faces:
        est, s = estimate_face_light(
            crop.image, raster, normals, field.albedo, field.weights, vertex_prior=field.prior
        )
        render = s.albedo * _irradiance(s.normals, est)
        skin = est.weights > 0
        photo_mean.append(s.colors[skin].mean(0))
        render_mean.append(render[skin].mean(0))
    p, r = np.array(photo_mean).ravel(), np.array(render_mean).ravel()
    assert np.corrcoef(p, r)[0, 1] > 0.95
    # chromaticity too, not just brightness: the R/B ratio of each face follows the photo's
    pr = np.array(photo_mean)[:, 0] / np.array(photo_mean)[:, 2]
    rr = np.array(render_mean)[:, 0] / np.array(render_mean)[:, 2]
    assert np.corrcoef(pr, rr)[0, 1] > 0.9


def test_face_samples_cardinality_and_erosion(fitted_faces):
    m, faces = fitted_faces
    _, crop, raster, normals = faces[0]
    s0 = face_samples(crop.image, raster, normals, REFERENCE_SKIN, erode_px=0)
    s2 = face_samples(crop.image, raster, normals, REFERENCE_SKIN, erode_px=2)
    assert len(s0.colors) == raster.covered.sum() > len(s2.colors)
    np.testing.assert_allclose(np.linalg.norm(s2.normals, axis=1), 1, atol=1e-5)
    assert s2.prior is None and s2.albedo_basis is None
    assert (s2.colors >= 0).all() and (s2.colors <= 1).all() and s2.pixels.dtype == np.int32


def test_the_samples_shared_basis_gives_the_same_estimate(fitted_faces):
    # an occluded copy re-estimates from the face's samples with their sh_basis computed once
    m, faces = fitted_faces
    field = skin_field(m)
    _, crop, raster, normals = faces[1]
    s = face_samples(crop.image, raster, normals, field.albedo, field.weights)
    np.testing.assert_array_equal(s.sh_basis, sh_basis(s.normals).astype(np.float64))
    copy = crop.image.copy()
    copy[140:200, 60:200] = (40, 90, 200)  # a blue occluder over the lower face
    colors = copy[s.pixels[:, 0], s.pixels[:, 1]].astype(np.float32) / 255.0
    shared = estimate_light(colors, s.normals, s.albedo, s.weights, basis=s.sh_basis)
    alone = estimate_light(colors, s.normals, s.albedo, s.weights)
    np.testing.assert_array_equal(shared.sh, alone.sh)
    np.testing.assert_array_equal(shared.weights, alone.weights)
    with pytest.raises(ShapeError):
        estimate_light(colors, s.normals, s.albedo, s.weights, basis=s.sh_basis[:-1])
