"""Training and inference prepare a face the same way: a shard built from a real photo and
its landmarks holds bit for bit the crop, fit and M that inference computes, and the render
inference makes from the shard's occluded input (the render's colour and light come from
the composite G sees, never from the clean face)."""

from __future__ import annotations

import shutil

import numpy as np
import torch

from deocc_core.face.prepare import FaceInputConfig, colour_render, prepare_face, rerender_face
from deocc_core.imageio import read_image
from deocc_core.infer.pipeline import deocclude_face
from deocc_core.landmarks.readers import read_pts
from deocc_core.morphable.model import load_model
from deocc_core.morphable.params import FitParams, pack_params
from deocc_core.nets.io import GeneratorSpec, prepare_generator
from deocc_core.synth.pipeline import BuildConfig, build
from deocc_core.synth.shards import ShardReader
from deocc_core.synth.verify import shard_paths


def test_shard_sample_and_inference_input_are_identical(ibug_pts_image, tmp_path):
    img_path, pts = ibug_pts_image
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(img_path, photos / img_path.name)
    shutil.copy(pts, photos / pts.name)
    cfg = BuildConfig(
        source="folder",
        root=str(photos),
        out=str(tmp_path / "shards"),
        size=64,
        per_shard=4,
        fit_landmarks="annotated",
    )
    build(cfg)
    (shard,) = [p for split in ("train", "test") for p in shard_paths(tmp_path / "shards", split)]
    with ShardReader(shard) as r:
        assert len(r) == 1
        sample = r.sample(0)

    spec = GeneratorSpec(size=64, ngf=4)
    G = prepare_generator(spec.build())
    model = load_model("starter")
    fo = deocclude_face(read_image(img_path), read_pts(pts), G, spec, model, torch.device("cpu"))
    face = fo.face
    assert face.crop.shape == (64, 64, 3) and face.face_mask.max() == 255
    assert np.array_equal(face.crop, sample.gt)
    rendered, light = colour_render(
        model, face.fit.params, sample.occluded, FaceInputConfig(size=64)
    )
    assert light is not None and np.array_equal(rendered.image, sample.render)
    assert np.array_equal(face.face_mask, sample.face_mask)
    assert np.array_equal(face.landmarks, sample.landmarks)
    assert np.array_equal(pack_params(face.fit.params), sample.params)
    # the occluder changed the shard's input, not its conditioning
    assert (sample.occluded != sample.gt).any()


def test_rerender_changes_only_the_render(ibug_pts_image):
    img_path, pts = ibug_pts_image
    model = load_model("starter")
    config = FaceInputConfig(size=64)
    face = prepare_face(read_image(img_path), read_pts(pts), model, config)
    p = face.fit.params
    smile = np.zeros(model.n_exp, np.float32)
    smile[list(model.exp_names).index("smile")] = 2 * model.exp_std[0]
    edited = rerender_face(face, model, FitParams(p.id_coef, smile, p.pose), config)
    assert np.array_equal(edited.crop, face.crop) and np.array_equal(edited.inverse, face.inverse)
    assert (edited.render != face.render).any() and np.array_equal(
        edited.fit.params.exp_coef, smile
    )
