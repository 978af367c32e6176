"""deocc-infer --mask: the user's mask is filled, every other pixel stays bit-identical."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from deocc_core.errors import ConfigError, InputError
from deocc_core.imageio import read_image, write_image
from deocc_core.infer.run import InferConfig, run_inference


@pytest.fixture(scope="module")
def masked_photo(shared_data) -> Path:
    p = shared_data / "faces_bulk" / "face_mask_detection" / "with_mask" / "103.jpg"
    if not p.is_file():
        pytest.skip(f"{p} missing (real masked photos)")
    return p


def _lower_face_mask(shape: tuple[int, int]) -> np.ndarray:
    """White over the surgical mask of 103.jpg (190x130 px: its lower middle)."""
    h, w = shape
    m = np.zeros((h, w, 3), np.uint8)
    m[int(0.55 * h) : int(0.8 * h), int(0.25 * w) : int(0.75 * w)] = 255
    return m


def test_a_given_mask_changes_exactly_its_pixels(masked_photo, generator_checkpoint, tmp_path):
    photo = read_image(masked_photo)
    mask = _lower_face_mask(photo.shape[:2])
    write_image(tmp_path / "m.png", mask)
    r = run_inference(
        InferConfig(
            inputs=(str(masked_photo),),
            ckpt=str(generator_checkpoint("mask", -20.0)),  # m̂ ≡ 0: alone it changes nothing
            out=str(tmp_path / "out"),
            mask=str(tmp_path / "m.png"),
            device="cpu",
        )
    )
    assert r.n_faces == 1, r.problems
    out = read_image(r.outputs[0])
    changed = (out != photo).any(-1)
    inside = mask[..., 0] > 0
    assert not changed[~inside].any()  # bit-identical outside the user's mask
    assert changed[inside].mean() > 0.9  # G's raw fill, although its m̂ says "nothing"


def test_a_mask_folder_is_matched_by_name_and_bad_masks_are_one_error(
    masked_photo, generator_checkpoint, tmp_path
):
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    shutil.copy(masked_photo, photos / "a.jpg")
    shutil.copy(masked_photo, photos / "b.jpg")
    photo = read_image(masked_photo)
    write_image(masks / "a_mask.png", _lower_face_mask(photo.shape[:2]))
    cfg = dict(ckpt=str(generator_checkpoint("mask", -20.0)), device="cpu")
    r = run_inference(
        InferConfig(inputs=(str(photos),), out=str(tmp_path / "o"), mask=str(masks), **cfg)
    )
    assert [p.name for p in r.outputs] == ["a_deoccluded.png"]
    assert len(r.problems) == 1 and "no mask" in r.problems[0] and "b" in r.problems[0]
    with pytest.raises(ConfigError, match="one mask file for 2 images"):
        run_inference(
            InferConfig(
                inputs=(str(photos),),
                out=str(tmp_path / "o"),
                mask=str(masks / "a_mask.png"),
                **cfg,
            )
        )
    write_image(masks / "small.png", np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InputError, match=r"small\.png: mask is 10x10 px, the photo 130x190"):
        run_inference(
            InferConfig(
                inputs=(str(photos / "a.jpg"),),
                out=str(tmp_path / "o2"),
                mask=str(masks / "small.png"),
                **cfg,
            )
        )
