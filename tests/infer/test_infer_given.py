"""Inference with a given-mask G (blend given): the mask is the user's or the segmenter's, the
completed render prefills it, G refines. An untrained given G (zero last layer) returns its
prefill exactly, so its outputs are known without training. Real photo + annotated landmarks.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from deocc_core.errors import ConfigError, FormatError
from deocc_core.imageio import read_image
from deocc_core.infer.fill import prefill, segmenter_mask
from deocc_core.infer.pipeline import deocclude, deocclude_face
from deocc_core.infer.run import InferConfig, load_run
from tests._inproc import run_main


def _mouth_mask(photo: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """``[H, W]`` uint8: the mouth's box (+4 px), 255, given as occluded."""
    mask = np.zeros(photo.shape[:2], np.uint8)
    x0, y0 = lm[48:68].min(0).astype(int) - 4
    x1, y1 = lm[48:68].max(0).astype(int) + 4
    mask[y0:y1, x0:x1] = 255
    return mask


def _run(ckpt, **kw):
    return load_run(InferConfig(inputs=("-",), ckpt=str(ckpt), landmarks_from="pts", **kw))


def _deocclude(run, photo, lm, mask=None):
    args = (run.G, run.spec, run.model, None, run.device)
    return deocclude(
        photo, *args, landmarks=[lm], config=run.face_config, segmenter=run.segmenter,
        mask=mask, fill=run.fill, fill_model=run.fill_model,
    )  # fmt: skip


def test_an_untrained_given_G_returns_the_prefill_inside_the_mask_and_the_crop_outside(
    ibug_pts_image, generator_checkpoint
):
    from deocc_core.landmarks.readers import read_pts

    img_path, pts = ibug_pts_image
    photo, lm = read_image(img_path), read_pts(pts)
    mask = _mouth_mask(photo, lm)
    run = _run(generator_checkpoint("given"), device="cpu", mask="given")
    assert run.spec.blend == "given" and run.fill == "g" and run.fill_model is None
    r = _deocclude(run, photo, lm, mask)
    (fo,) = r.faces
    s = fo.face.crop.shape[0]
    held = cv2.warpAffine(mask, fo.face.matrix, (s, s), flags=cv2.INTER_LINEAR) >= 1
    covered = fo.face.render_result.raster.covered
    pre = prefill(fo.face.crop, fo.face.render, covered, held.astype(np.float32))
    assert np.array_equal(fo.raw, pre)
    assert np.array_equal(fo.output[held], pre[held]) and (pre[held] != fo.face.crop[held]).any()
    assert np.array_equal(fo.output[~held], fo.face.crop[~held])
    # the photo: bit-identical outside the user's mask, changed inside it
    assert np.array_equal(r.image[mask == 0], photo[mask == 0])
    assert (r.image[mask == 255] != photo[mask == 255]).any()


def test_fill_render_is_the_prefill_path_and_auto_uses_the_shipped_segmenter(
    ibug_pts_image, generator_checkpoint
):
    """--fill render (the prefill alone, G not run) equals an untrained G's output; the
    segmenter's m̂ (auto → default for a given G) says where, as it does for the other Gs."""
    from deocc_core.infer.paste import paste_region
    from deocc_core.landmarks.readers import read_pts
    from deocc_core.nets.segmenter import run_segmenter

    img_path, pts = ibug_pts_image
    photo, lm = read_image(img_path), read_pts(pts)
    x0, y0 = lm[48:68].min(0).astype(int) - 6
    x1, y1 = lm[48:68].max(0).astype(int) + 6
    photo[y0:y1, x0:x1] = (70, 90, 160)  # a flat blue patch over the mouth: an occluder
    ckpt = generator_checkpoint("given")
    out = {}
    for fill in ("g", "render"):
        run = _run(ckpt, device="cpu", fill=fill)
        assert run.segmenter_choice == "default" and run.fill == fill
        out[fill] = _deocclude(run, photo, lm)
    assert "G not run" in run.label
    g, rf = out["g"].faces[0], out["render"].faces[0]
    assert np.array_equal(g.raw, rf.raw) and np.array_equal(g.output, rf.output)
    assert np.array_equal(out["g"].image, out["render"].image)
    m = segmenter_mask(run_segmenter(run.segmenter, g.face.crop))
    assert np.array_equal(g.mask, paste_region("mask", m, np.zeros(m.shape, np.uint8)))
    pre = prefill(g.face.crop, g.face.render, g.face.render_result.raster.covered, m)
    core = m == 1  # inside the mask's core: the prefill exactly
    assert core.any() and np.array_equal(g.output[core], pre[core])
    assert 0 < (g.mask >= 128).mean() < 0.2  # the real segmenter finds the patch
    assert (g.output != g.face.crop).any()
    # deocclude_face (deocc-eval --photos) gives the same face as deocclude
    fo = deocclude_face(
        photo, lm, run.G, run.spec, run.model, run.device, config=run.face_config,
        segmenter=run.segmenter, fill="g",
    )  # fmt: skip
    assert np.array_equal(fo.output, g.output)


def test_the_shipped_models_render_fill_leaves_its_G_unbuilt_yet_verified(tmp_path):
    """--fill auto with the shipped given-mask G is its prefill alone: G is never run, so
    not built; its file is still verified (its metadata says how faces are prepared)."""
    from deocc_core.nets.packaged import default_model_path

    run = load_run(InferConfig(inputs=("-",), landmarks_from="pts", device="cpu"))
    if run.spec.blend != "given":
        pytest.skip("the shipped default model is not a given-mask G")
    assert run.fill == "render" and run.G is None and "G not run" in run.label
    assert _run(default_model_path(), device="cpu", fill="g").G is not None
    damaged = bytearray(default_model_path().read_bytes())
    damaged[-1] ^= 1  # one bit of the last weight
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(damaged)
    with pytest.raises(FormatError, match="does not match its sha256"):
        _run(bad, device="cpu", fill="render")


def test_segmenter_none_without_a_mask_and_expression_edits_are_refused(
    tmp_path, ibug_pts_image, generator_checkpoint
):
    ckpt = generator_checkpoint("given")
    with pytest.raises(ConfigError, match="given-mask generator"):
        _run(ckpt, device="cpu", segmenter="none")
    assert _run(ckpt, device="cpu", segmenter="none", mask="m.png").segmenter is None
    with pytest.raises(ConfigError, match="expression edits"):
        _run(ckpt, device="cpu", expression="smile")
    img, _ = ibug_pts_image
    r = run_main("deocc_infer", img, "--ckpt", ckpt, "--segmenter", "none", "--out", tmp_path / "o")
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [x for x in (r.stdout + r.stderr).splitlines() if "given-mask" in x]
    assert len(lines) == 1 and "Traceback" not in r.stderr


def test_faces_of_a_photo_share_one_given_G_call(ibug_pts_image, generator_checkpoint):
    """Two faces in one photo through G_BATCH: each as if it were alone (with a trained-like
    G: random last layer, so G's residual is not zero)."""
    from deocc_core.landmarks.ibug import ibug_scheme
    from deocc_core.landmarks.readers import read_pts

    img_path, pts = ibug_pts_image
    photo, lm = read_image(img_path), read_pts(pts)
    w = photo.shape[1]
    two = np.ascontiguousarray(np.concatenate([photo, photo[:, ::-1]], 1))
    mirrored = lm[ibug_scheme().mirror] * [-1, 1] + [2 * w - 1, 0]
    run = _run(generator_checkpoint("given"), device="cpu")
    torch.manual_seed(1)
    convs = [m for m in run.G.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        convs[-1].weight.normal_(0, 0.02)
    r = _deocclude(run, two, lm)
    both = deocclude(
        two, run.G, run.spec, run.model, None, run.device, landmarks=[lm, mirrored],
        config=run.face_config, segmenter=run.segmenter,
    )  # fmt: skip
    assert len(both.faces) == 2 and (both.faces[0].raw != both.faces[0].output).any()
    np.testing.assert_allclose(both.faces[0].raw, r.faces[0].raw, atol=1)


def test_another_segmenter_than_the_exported_one_is_warned_about(
    tmp_path, generator_checkpoint, caplog
):
    from deocc_core.nets.packaged import export_generator
    from deocc_core.nets.segmenter import Segmenter, SegmenterSpec, save_segmenter

    model = export_generator(generator_checkpoint("given"), tmp_path / "g.safetensors").path
    other = save_segmenter(
        Segmenter(SegmenterSpec(widths=(8, 8, 8, 8, 8), refine=4)), tmp_path / "s.safetensors"
    )
    with caplog.at_level("WARNING"):
        _run(model, device="cpu")
    assert not [r for r in caplog.records if "exported with segmenter" in r.getMessage()]
    with caplog.at_level("WARNING"):
        run = _run(model, device="cpu", segmenter=str(other))
    assert run.segmenter_choice == str(other)
    assert [r for r in caplog.records if "exported with segmenter" in r.getMessage()]
