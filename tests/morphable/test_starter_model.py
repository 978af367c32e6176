"""The embedded starter model: format, anatomy, smooth modes, determinism, and how it renders."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from deocc_core.landmarks.ibug import ibug_scheme
from deocc_core.morphable.model import load_model, starter_model_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model():
    return load_model("starter")


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_starter_model", ROOT / "tools" / "make_starter_model.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_keys_shapes_and_size(model):
    z = np.load(starter_model_path())
    v = z["mean"].shape[0]
    assert 3000 <= v <= 6000 and starter_model_path().stat().st_size < 3e6
    assert (
        z["id_basis"].shape[1] >= 10
        and z["exp_basis"].shape[1] >= 10
        and z["albedo_basis"].shape[1] >= 3
    )
    assert {"jaw_open", "smile", "brow_raise"} <= set(model.exp_names)
    assert model.albedo().min() >= 0 and model.albedo().max() <= 1
    np.testing.assert_allclose(np.linalg.norm(model.id_basis, axis=0), 1, atol=1e-5)


def test_landmarks_in_anatomical_order_and_mirrored(model):
    lm = model.mean[model.landmarks68]
    s = ibug_scheme()
    y = {k: lm[v, 1].mean() for k, v in s.parts.items()}
    assert y["brow_right"] > y["eye_right"] > lm[30, 1] > y["lips_outer"] > lm[8, 1]
    assert lm[36, 0] < lm[39, 0] < 0 < lm[42, 0] < lm[45, 0]  # subject right = image left
    np.testing.assert_allclose(lm[:, 0], -lm[s.mirror, 0], atol=3.0)
    np.testing.assert_allclose(lm[:, 1], lm[s.mirror, 1], atol=3.0)
    face_width = np.ptp(model.mean[:, 0])
    assert 130 < face_width < 160


def test_modes_are_smooth_and_do_what_they_say(model):
    edges = np.concatenate(
        [model.triangles[:, [0, 1]], model.triangles[:, [1, 2]], model.triangles[:, [2, 0]]]
    )
    for k in range(model.n_exp):
        d = (model.exp_basis[:, k] * model.exp_std[k]).reshape(-1, 3)
        mag = np.linalg.norm(d, axis=1)
        assert mag.max() > 1.0, model.exp_names[k]  # each mode moves something by > 1 mm
        jump = np.linalg.norm(d[edges[:, 0]] - d[edges[:, 1]], axis=1).max()
        assert jump < 0.5 * mag.max(), model.exp_names[k]
    lm = model.landmarks68

    def dist(e, a, b):
        v = model.vertices(exp_coef=e)
        return np.linalg.norm(v[lm[a]] - v[lm[b]])

    names = list(model.exp_names)
    e0 = np.zeros(model.n_exp)
    open_, smile = e0.copy(), e0.copy()
    open_[names.index("jaw_open")] = model.exp_std[names.index("jaw_open")]
    smile[names.index("smile")] = model.exp_std[names.index("smile")]
    assert dist(open_, 62, 66) > dist(e0, 62, 66) + 3
    assert dist(smile, 48, 54) > dist(e0, 48, 54) + 3


def test_mesh_is_manifold_with_front_facing_normals(model):
    from deocc_core.render.shading import vertex_normals

    t = np.sort(
        np.concatenate(
            [model.triangles[:, [0, 1]], model.triangles[:, [1, 2]], model.triangles[:, [2, 0]]]
        ),
        1,
    )
    _, counts = np.unique(t, axis=0, return_counts=True)
    assert counts.max() <= 2
    v = model.mean
    fn = np.cross(
        v[model.triangles[:, 1]] - v[model.triangles[:, 0]],
        v[model.triangles[:, 2]] - v[model.triangles[:, 0]],
    )
    big = np.linalg.norm(fn, axis=1) > 1e-6
    assert (fn[big, 2] > 0).mean() > 0.95  # counter-clockwise seen from the front
    assert vertex_normals(v, model.triangles)[model.landmarks68[30], 2] > 0.5


def test_generator_is_deterministic_and_asset_is_fresh(tmp_path):
    gen = _generator()
    out = tmp_path / "m.npz"
    from deocc_core.morphable.model import save_npz_deterministic

    save_npz_deterministic(out, gen.make_starter_model())
    assert out.read_bytes() == starter_model_path().read_bytes(), (
        "assets/starter_model.npz is stale: rerun tools/make_starter_model.py"
    )


def test_frontal_render_looks_like_a_face(model, tmp_path):
    import cv2

    from deocc_core.morphable.params import FitParams, Pose
    from deocc_core.render import render_face

    p = FitParams(np.zeros(model.n_id), np.zeros(model.n_exp), Pose(0.9, 0, 0, 0, 128, 128))
    r = render_face(model, p, 256, 256)
    cv2.imwrite(str(tmp_path / "starter_frontal.png"), r.image[:, :, ::-1])
    ys, xs = np.nonzero(r.mask)
    assert 1.2 < np.ptp(ys) / np.ptp(xs) < 1.7
    lm = r.projected[model.landmarks68]
    eye, lip = (
        r.image[int(lm[37, 1]) + 2, int(lm[37, 0])],
        r.image[int(lm[51, 1]) + 3, int(lm[51, 0])],
    )
    assert lip[0] > lip[1] + 40  # red lips
    assert int(eye.max()) - int(eye.min()) < 20  # the eye white is grey, unlike the skin
    assert (tmp_path / "starter_frontal.png").stat().st_size > 1000


def _labelled(shared_data):
    d = shared_data / "faces"
    return sorted((d / "PRNet_AFLW2000").glob("*.jpg")) + [
        d / "face3d_300WLP" / "IBUG_image_008_1_0.jpg",
        d / "eos_examples" / "image_0010.png",
    ]


def test_fitted_real_faces_have_no_chin_notch_and_the_jaw_opens_dark(model, shared_data, tmp_path):
    """The 15 human-labelled faces fitted with the starter: the silhouette M is whole from
    the nose tip down to the chin (a tilted head once showed a black notch there), and
    jaw_open shows a dark mouth interior between the lips.
    """
    from deocc_core.face.prepare import FaceInputConfig, prepare_face, rerender_face
    from deocc_core.imageio import read_image, write_image
    from deocc_core.landmarks.readers import find_annotation, read_annotation
    from deocc_core.morphable.params import FitParams

    cfg = FaceInputConfig(size=256)
    k = list(model.exp_names).index("jaw_open")
    sheet = []
    for path in _labelled(shared_data):
        face = prepare_face(read_image(path), read_annotation(find_annotation(path)), model, cfg)
        lm = face.fit.projected
        if abs(np.degrees(face.fit.params.pose.yaw)) > 60:  # beyond the product's yaw range
            continue
        # every pixel from the lower lip (57) to just inside the chin (8, on the outline) is in M
        t = np.linspace(0, 0.9, 50)[:, None]
        seg = np.rint(lm[57] * (1 - t) + lm[8] * t).astype(int)
        assert (face.face_mask[seg[:, 1], seg[:, 0]] > 0).all(), path.name
        p = face.fit.params
        exp = np.zeros(model.n_exp, np.float32)
        exp[k] = 2.5 * model.exp_std[k]
        opened = rerender_face(face, model, FitParams(p.id_coef, exp, p.pose), cfg)
        # the opened mouth's interior: the darkest pixels near the (moved) inner-lip centre
        olm = opened.render_result.projected[model.landmarks68][:, :2]
        centre = np.rint(olm[[62, 66]].mean(0)).astype(int)
        win = opened.render[centre[1] - 3 : centre[1] + 4, centre[0] - 3 : centre[0] + 4]
        skin = face.render[face.face_mask > 0].mean(0)
        assert win.mean() < 0.55 * skin.mean(), path.name
        sheet.append(np.concatenate([face.crop, face.render, opened.render], 1))
    write_image(tmp_path / "starter_fits.png", np.concatenate(sheet[:5], 0))


def test_fitted_yaw_matches_the_labelled_pose(model, aflw_dir):
    """Fitted to the AFLW2000-3D faces within +-60 deg, the starter's yaw is close to their
    Pose_Para yaw (a shell whose sides did not recede overestimated it by ~35 %).
    """
    from deocc_core.face.align import align_face
    from deocc_core.imageio import read_image
    from deocc_core.landmarks.readers import find_annotation, read_annotation, read_mat_annotation
    from deocc_core.morphable.fit import fit_landmarks

    errors = []
    for path in sorted(aflw_dir.glob("*.jpg")):
        ann = find_annotation(path)
        truth = read_mat_annotation(ann).yaw_deg
        if abs(truth) > 60:
            continue
        crop = align_face(read_image(path), read_annotation(ann), 256)
        fitted = np.degrees(fit_landmarks(model, crop.landmarks).params.pose.yaw)
        errors.append(abs(fitted - truth))
    # measured: median 2.1 deg, max 6 (before: median 7, max 16); Surrey model: median 4.8
    assert len(errors) >= 10 and np.median(errors) < 4.0 and max(errors) < 10.0
