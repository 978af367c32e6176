"""Inference: de-occlusion of a real face (mask-aware and paper G), mesh, expressions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deocc_core.errors import ConfigError, InputError
from deocc_core.imageio import read_image
from deocc_core.infer.paste import paste_back
from deocc_core.infer.pipeline import (
    deocclude,
    deocclude_face,
    expression_coefficients,
)
from deocc_core.landmarks.readers import read_pts
from deocc_core.morphable.model import load_model
from deocc_core.nets.io import load_generator
from deocc_core.render import read_obj


def test_deocclude_a_real_face_with_a_trained_generator(ibug_pts_image, tiny_run):
    img_path, pts = ibug_pts_image
    photo = read_image(img_path)
    G, cfg, _ = load_generator(tiny_run)
    m = load_model("starter")
    fo = deocclude_face(photo, read_pts(pts), G, cfg, m, torch.device("cpu"))
    assert fo.output.shape == (64, 64, 3) and fo.face.face_mask.max() == 255
    assert fo.mask.shape == (64, 64) and fo.weight.shape == (64, 64)
    result, a = paste_back(photo, fo.output, fo.face.inverse, fo.weight)
    assert result.shape == photo.shape and (result != photo).any()
    assert np.array_equal(result[a == 0], photo[a == 0])


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
    # a working copy in tmp (never in the repo): the photo + its sidecar, an unannotated
    # copy, an unreadable file
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
    assert len(changed) > 0
    # every changed pixel (x, y) lies in the crop square the paste-back came from (a 1.6x
    # box round the landmarks, see face/align.py) around the annotated face: the detector
    # found the right face and paste-back stays on it
    lm = read_pts(pts)
    centre, side = (lm.min(0) + lm.max(0)) / 2, np.ptp(lm, 0).max() * 1.6
    assert (np.abs(changed[:, ::-1] - centre).max(1) <= 0.75 * side).all()


def _deocclude_pts(ibug_pts_image, ckpt):
    from deocc_core.nets.io import prepare_generator

    img_path, pts = ibug_pts_image
    photo = read_image(img_path)
    G, spec, _ = load_generator(ckpt)
    r = deocclude(
        photo,
        prepare_generator(G),
        spec,
        load_model("starter"),
        None,
        torch.device("cpu"),
        landmarks=[read_pts(pts)],
    )
    return photo, r


def test_nothing_occluded_returns_the_photo_bit_for_bit(ibug_pts_image, generator_checkpoint):
    photo, r = _deocclude_pts(ibug_pts_image, generator_checkpoint("mask", -20.0))
    (fo,) = r.faces
    assert fo.mask.max() == 0 and not fo.weight.any() and not r.weight.any()
    assert np.array_equal(r.image, photo)
    # the crop output is the input crop where m̂ = 0, although G's raw output is not
    assert np.array_equal(fo.output, fo.face.crop) and (fo.raw != fo.face.crop).any()


def test_everything_occluded_replaces_the_crop_and_fades_at_its_border(
    ibug_pts_image, generator_checkpoint
):
    import cv2

    photo, r = _deocclude_pts(ibug_pts_image, generator_checkpoint("mask", 20.0))
    (fo,) = r.faces
    assert fo.mask.min() == 255 and np.array_equal(fo.output, fo.raw)
    assert fo.weight[32, 32] == 1 and fo.weight[0, 0] == 0
    # the photo holds G's output in the middle of the crop, the photo outside the crop
    h, w = photo.shape[:2]
    centre = fo.face.inverse @ np.array([31.5, 31.5, 1.0])
    x, y = np.round(centre).astype(int)
    warped = cv2.warpAffine(fo.output, fo.face.inverse, (w, h), flags=cv2.INTER_LINEAR)
    assert r.weight[y, x] == 1 and np.abs(r.image[y, x].astype(int) - warped[y, x]).max() <= 1
    inside = cv2.warpAffine(np.ones((64, 64), np.uint8), fo.face.inverse, (w, h)) > 0
    assert np.array_equal(r.image[~inside], photo[~inside])


def test_the_paper_G_pastes_over_the_face_region(ibug_pts_image, generator_checkpoint):
    import cv2

    photo, r = _deocclude_pts(ibug_pts_image, generator_checkpoint("none"))
    (fo,) = r.faces
    assert np.array_equal(fo.mask, fo.face.face_mask) and np.array_equal(fo.output, fo.raw)
    h, w = photo.shape[:2]
    near = cv2.dilate(fo.face.face_mask, np.ones((9, 9), np.uint8))  # M + grow + feather
    near_photo = cv2.warpAffine(near, fo.face.inverse, (w, h)) > 0
    changed = (r.image != photo).any(2)
    assert changed.any() and not (changed & ~near_photo).any()


def test_faces_with_non_finite_landmarks_are_skipped(ibug_pts_image, generator_checkpoint):
    from deocc_core.nets.io import prepare_generator

    img_path, pts = ibug_pts_image
    photo = read_image(img_path)
    G, spec, _ = load_generator(generator_checkpoint("mask"))
    lm = read_pts(pts)
    lm[3] = np.nan
    r = deocclude(
        photo,
        prepare_generator(G),
        spec,
        load_model("starter"),
        None,
        torch.device("cpu"),
        landmarks=[lm],
    )
    assert not r.faces and "not finite" in r.skipped[0] and np.array_equal(r.image, photo)


@pytest.mark.parametrize("seg_logit", [-20.0, 20.0])
def test_a_segmenter_s_mask_overrides_G_s_own(ibug_pts_image, generator_checkpoint, seg_logit):
    from deocc_core.nets.io import prepare_generator
    from deocc_core.nets.segmenter import Segmenter, SegmenterSpec

    seg = Segmenter(SegmenterSpec(size=64, widths=(8, 8, 8, 8, 8), refine=4)).eval()
    with torch.no_grad():  # a constant m̂: the refinement adds nothing, the head gives the logit
        seg.head.weight.zero_()
        seg.head.bias.fill_(seg_logit)
        seg.refine[-1].weight.zero_()
        seg.refine[-1].bias.zero_()
    img_path, pts = ibug_pts_image
    # G says "nothing occluded" when the segmenter says "everything", and the other way round
    G, spec, _ = load_generator(generator_checkpoint("mask", -seg_logit))
    fo = deocclude_face(
        read_image(img_path),
        read_pts(pts),
        prepare_generator(G),
        spec,
        load_model("starter"),
        torch.device("cpu"),
        segmenter=seg,
    )
    if seg_logit < 0:
        assert fo.mask.max() == 0 and np.array_equal(fo.output, fo.face.crop)
    else:
        assert fo.mask.min() == 255 and np.array_equal(fo.output, fo.raw)


def test_faces_of_a_photo_share_one_generator_call_with_the_same_result(ibug_pts_image):
    """deocclude runs G once on a photo's faces (batched): the same pixels and weights as
    each face through deocclude_face and paste_back in turn (the shipped model, 2 faces)."""
    from deocc_core.infer.run import InferConfig, load_run
    from deocc_core.landmarks.ibug import ibug_scheme

    img_path, pts = ibug_pts_image
    photo = read_image(img_path)
    lm = read_pts(pts)
    w = photo.shape[1]
    two = np.ascontiguousarray(np.concatenate([photo, photo[:, ::-1]], 1))
    mirrored = lm[ibug_scheme().mirror] * [-1, 1] + [2 * w - 1, 0]  # the mirrored copy's face
    # fill g: G runs (the shipped given-mask G's own fill, render, leaves it unbuilt)
    run = load_run(InferConfig(inputs=("-",), landmarks_from="pts", device="cpu", fill="g"))
    args = (run.G, run.spec, run.model)
    r = deocclude(
        two,
        *args,
        None,
        run.device,
        landmarks=[lm, mirrored],
        config=run.face_config,
        segmenter=run.segmenter,
    )
    assert len(r.faces) == 2 and not r.skipped
    ref, weight = two, np.zeros(two.shape[:2], np.float32)
    for k, face_lm in enumerate((lm, mirrored)):
        fo = deocclude_face(
            two, face_lm, *args, run.device, config=run.face_config, segmenter=run.segmenter
        )
        assert np.array_equal(fo.output, r.faces[k].output)
        ref, a = paste_back(ref, fo.output, fo.face.inverse, fo.weight)
        weight = np.maximum(weight, a)
    assert np.array_equal(r.image, ref) and np.array_equal(r.weight, weight)


def test_render_fill_replaces_only_the_given_mask_with_the_completed_render(
    ibug_pts_image, tiny_run
):
    """--fill render (a mask-blend G, starter conditioning; fill from deocc-face): pixels outside
    the user's mask stay bit-identical; inside it, the fill follows deocc-face's completed
    render, not G's output; G's own output is the same as with --fill g."""
    import cv2

    from deocc_core.face.prepare import prepare_face
    from deocc_core.infer.fill import match_render
    from deocc_core.infer.run import InferConfig, load_run

    img_path, pts = ibug_pts_image
    photo, lm = read_image(img_path), read_pts(pts)
    mask = np.zeros(photo.shape[:2], np.uint8)
    x0, y0 = lm[48:68].min(0).astype(int) - 4
    x1, y1 = lm[48:68].max(0).astype(int) + 4
    mask[y0:y1, x0:x1] = 255  # the mouth, given as occluded
    out = {}
    for fill in ("g", "render"):
        cfg = InferConfig(inputs=("-",), ckpt=str(tiny_run), landmarks_from="pts", fill=fill)
        run = load_run(cfg)
        assert run.fill == fill and (fill == "g") == (run.fill_model is None)
        args = (run.G, run.spec, run.model, None, run.device)
        out[fill] = deocclude(
            photo, *args, landmarks=[lm], config=run.face_config, mask=mask,
            fill=run.fill, fill_model=run.fill_model,
        )  # fmt: skip
    r, g = out["render"], out["g"]
    keep = r.weight == 0
    assert (mask[keep] == 0).all() and np.array_equal(r.image[keep], photo[keep])
    inside = mask == 255
    assert (r.image[inside] != g.image[inside]).any()
    # in crop space: the fill is deocc-face's completed render where it covers the face,
    # colour-matched to the skin around the mask (a smooth gain)
    fo = r.faces[0]
    face = prepare_face(photo, lm, run.fill_model, run.face_config)
    s = fo.raw.shape[0]
    held = cv2.warpAffine(mask, fo.face.matrix, (s, s)) >= 128
    covered = face.render_result.raster.covered
    render = match_render(face.render, fo.face.crop, held, covered)
    cov = cv2.erode(covered.astype(np.uint8), np.ones((9, 9))) > 0
    sel = held & cov
    assert sel.sum() > 50
    assert np.abs(fo.raw[sel].astype(int) - render[sel]).max() <= 1
    assert np.abs(g.faces[0].raw[sel].astype(float) - render[sel]).mean() > 10
    # G's conditioning is untouched: its own render is the starter's
    assert np.array_equal(fo.face.render, g.faces[0].face.render)


def test_render_fill_with_an_expression_edit_is_refused_before_any_photo(tiny_run):
    from deocc_core.infer.run import InferConfig, load_run

    cfg = InferConfig(inputs=("-",), ckpt=str(tiny_run), landmarks_from="pts", expression="smile")
    assert load_run(cfg).fill == "g"  # auto: an expression edit keeps G's fill
    with pytest.raises(ConfigError, match="fill g for expression edits"):
        load_run(InferConfig(**{**cfg.__dict__, "fill": "render"}))
