"""Inference: paste-back on a real photo, a full de-occlusion of a real face, mesh, expressions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deocc_core.errors import ConfigError, InputError
from deocc_core.face.align import align_face
from deocc_core.imageio import read_image
from deocc_core.infer.pipeline import (
    deocclude_face,
    expression_coefficients,
    paste_back,
    vertex_colors,
)
from deocc_core.landmarks.readers import read_pts
from deocc_core.morphable.model import load_model
from deocc_core.nets.io import load_generator
from deocc_core.render import read_obj, render_face, write_obj


def test_paste_back_of_the_crop_itself_changes_nothing_outside_the_face(ibug_pts_image):
    img_path, pts = ibug_pts_image
    photo = read_image(img_path)
    lm = read_pts(pts)
    crop = align_face(photo, lm, 256)
    m = load_model("starter")
    from deocc_core.morphable.fit import fit_landmarks

    rr = render_face(m, fit_landmarks(m, crop.landmarks).params, 256, 256)
    out = paste_back(photo, crop.image, crop.inverse, rr.mask)
    warped_mask = np.zeros(photo.shape[:2], np.uint8)
    import cv2

    warped_mask = cv2.warpAffine(rr.mask, crop.inverse, photo.shape[1::-1]) > 0
    assert (out[~warped_mask] == photo[~warped_mask]).all()
    diff = np.abs(out.astype(int) - photo)[warped_mask]
    assert diff.mean() < 6  # resampling error only: the identity "generator" blends invisibly


def test_deocclude_a_real_face_with_a_trained_generator(ibug_pts_image, tiny_run, tmp_path):
    img_path, pts = ibug_pts_image
    photo = read_image(img_path)
    G, cfg, _ = load_generator(tiny_run)
    m = load_model("starter")
    fo = deocclude_face(photo, read_pts(pts), G, cfg, m, torch.device("cpu"))
    assert fo.output.shape == (64, 64, 3) and fo.face.face_mask.max() == 255
    result = paste_back(photo, fo.output, fo.face.inverse, fo.face.face_mask)
    assert result.shape == photo.shape and (result != photo).any()
    cols = vertex_colors(
        fo.face.render_result.projected, fo.face.render_result.visible, fo.output, m.albedo()
    )
    path = write_obj(
        tmp_path / "face.obj",
        m.vertices(fo.face.fit.params.id_coef, fo.face.fit.params.exp_coef),
        m.triangles,
        cols,
    )
    v, t, _ = read_obj(path)
    assert v.shape == (m.n_vertices, 3) and t.shape == m.triangles.shape


def test_expression_presets_and_files(tmp_path):
    m = load_model("starter")
    assert not expression_coefficients(m, "neutral").any()
    assert expression_coefficients(m, "keep") is None
    f = tmp_path / "e.json"
    f.write_text('{"jaw_open": 1.5}')
    c = expression_coefficients(m, str(f))
    assert c[list(m.exp_names).index("jaw_open")] == pytest.approx(1.5 * m.exp_std[0])
    sfm_like = m.__class__(**{**m.__dict__, "exp_names": tuple(f"mode{i}" for i in range(m.n_exp))})
    with pytest.raises(ConfigError, match="no expression mode"):
        expression_coefficients(sfm_like, "smile")
    f.write_text(str([0.5] * m.n_exp))
    assert expression_coefficients(sfm_like, str(f)) == pytest.approx(0.5 * m.exp_std)
    f.write_text("[1, 2]")
    with pytest.raises(InputError, match="expected"):
        expression_coefficients(sfm_like, str(f))


def test_run_inference_on_a_real_photo_folder_reports_problems_and_writes_outputs(
    ibug_pts_image, tiny_run, tmp_path
):
    import shutil

    from deocc_core.imageio import read_image as read
    from deocc_core.infer.run import InferConfig, run_inference

    img_path, pts = ibug_pts_image
    photos = tmp_path / "photos"
    photos.mkdir()
    # a working copy in tmp (never in the repo): the photo + its sidecar, an unannotated copy,
    # an unreadable file
    shutil.copy(img_path, photos / f"a{img_path.suffix}")
    shutil.copy(pts, photos / "a.pts")
    shutil.copy(img_path, photos / f"b{img_path.suffix}")
    (photos / "c.png").write_bytes(b"not an image")
    calls = []
    r = run_inference(
        InferConfig(
            inputs=(str(photos),),
            ckpt=str(tiny_run),
            out=str(tmp_path / "o"),
            landmarks_from="pts",
            mesh=True,
            side_by_side=True,
            device="cpu",
        ),
        progress=lambda n=1, total=None: calls.append(n),
    )
    assert r.n_images == 3 and r.n_faces == 1 and sum(calls) == 3
    assert (
        len(r.problems) == 2
        and any("c.png" in p for p in r.problems)
        and any("b" + img_path.suffix in p for p in r.problems)
    )
    photo = read(img_path)
    assert read(r.outputs[0]).shape == photo.shape
    sbs = read(tmp_path / "o" / "a_side_by_side.png")
    assert sbs.shape == (photo.shape[0], 2 * photo.shape[1], 3)
    v, t, _ = read_obj(tmp_path / "o" / "a_face0.obj")
    assert v.shape[1] == 3 and len(t) > 0


def test_deocclude_with_the_dlib_detector_changes_only_the_face(ibug_pts_image, tiny_run):
    from deocc_core.infer.pipeline import deocclude
    from deocc_core.landmarks.detect import make_detector
    from deocc_core.nets.io import prepare_generator

    img_path, pts = ibug_pts_image
    photo = read_image(img_path)
    G, cfg, _ = load_generator(tiny_run)
    r = deocclude(
        photo,
        prepare_generator(G),
        cfg,
        load_model("starter"),
        make_detector("dlib"),
        torch.device("cpu"),
    )
    assert len(r.faces) == 1 and not r.skipped
    changed = np.argwhere((r.image != photo).any(2))
    lm = read_pts(pts)
    lo, hi = lm.min(0) - 0.25 * np.ptp(lm, 0), lm.max(0) + 0.25 * np.ptp(lm, 0)
    lo[1] -= 0.4 * np.ptp(
        lm[:, 1]
    )  # the 3DMM face region M includes the forehead above the brow landmarks
    assert len(changed) > 0
    # every changed pixel (x, y) lies near the annotated face: the detector found the right
    # face and paste-back stays on it
    assert (
        (changed[:, 1] >= lo[0]).all()
        and (changed[:, 1] <= hi[0]).all()
        and (changed[:, 0] >= lo[1]).all()
        and (changed[:, 0] <= hi[1]).all()
    )


def test_paste_back_feathers_the_seam(ibug_pts_image):
    """A uniformly brightened crop arrives fully inside the face and fades out without a step."""
    import cv2

    from deocc_core.morphable.fit import fit_landmarks

    img_path, pts = ibug_pts_image
    photo = read_image(img_path)
    crop = align_face(photo, read_pts(pts), 256)
    m = load_model("starter")
    rr = render_face(m, fit_landmarks(m, crop.landmarks).params, 256, 256)
    # the blend weight itself: a white crop pasted onto a black photo of the same size
    alpha = (
        paste_back(np.zeros_like(photo), np.full_like(crop.image, 255), crop.inverse, rr.mask)[
            ..., 0
        ]
        / 255.0
    )
    core = (
        cv2.warpAffine(
            cv2.erode(rr.mask, np.ones((41, 41), np.uint8)), crop.inverse, photo.shape[1::-1]
        )
        > 200
    )
    assert (
        alpha[core].min() > 0.97
    )  # 20 crop px inside M the crop has (almost) entirely replaced the photo
    assert (
        alpha.max() <= 1
        and (alpha[cv2.warpAffine(rr.mask, crop.inverse, photo.shape[1::-1]) == 0] == 0).all()
    )
    scale = np.sqrt(abs(np.linalg.det(crop.inverse[:, :2])))  # photo px per crop px
    step = max(np.abs(np.diff(alpha, axis=0)).max(), np.abs(np.diff(alpha, axis=1)).max())
    assert step < 0.2 / max(scale, 1) + 0.02  # no hard edge: the weight ramps over > 5 crop pixels
