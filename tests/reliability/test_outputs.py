"""deocc-infer's output folder: one run at a time, never read back as input."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from deocc_core.errors import ConfigError
from deocc_core.fileio import FolderLock
from deocc_core.imageio import read_image
from deocc_core.infer.run import LOCK_NAME, InferConfig, plan_outputs, run_inference

OUTPUTS = (  # what one run writes for photo p1 (see infer/run.py _process_image)
    "p1_deoccluded.png", "p1_mask.png", "p1_side_by_side.png", "p1_face0_crop.png",
    "p1_face0_render.png", "p1_face0_output.png", "p1_face0_mask.png", "p1_face0_view.png",
    "grid.png",
)  # fmt: skip


@pytest.fixture()
def photos(ibug_pts_image, tmp_path):
    """A folder with one real photo and its sidecar."""
    img, pts = ibug_pts_image
    d = tmp_path / "photos"
    d.mkdir()
    shutil.copy(img, d / "p1.png")
    shutil.copy(pts, d / "p1.pts")
    return d


def _fake_outputs(photo, folder):
    """A previous run's outputs in ``folder`` (real PNGs: copies of the photo)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        shutil.copy(photo, folder / name)


def test_out_inside_the_input_folder_is_never_read(photos):
    _fake_outputs(photos / "p1.png", photos / "out")
    plan = plan_outputs([str(photos)], photos / "out")
    assert [n for _, n in plan] == ["p1"]
    assert len(plan_outputs([str(photos)])) == 1 + len(OUTPUTS)  # what used to be read


def test_out_equal_to_the_input_folder_skips_only_its_outputs(photos):
    _fake_outputs(photos / "p1.png", photos)
    shutil.copy(photos / "p1.png", photos / "p2.png")  # a new photo is still found
    plan = plan_outputs([str(photos)], photos)
    assert [n for _, n in plan] == ["p1", "p2"]


def test_a_second_run_into_the_same_out_stops_in_one_line(photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with FolderLock(out, LOCK_NAME, "deocc-infer"):  # the first run, still writing
        cfg = InferConfig(inputs=(str(photos),), out=str(out), landmarks_from="pts")
        with pytest.raises(ConfigError, match="another deocc-infer") as e:
            run_inference(cfg)
    assert str(out) in str(e.value) and "\n" not in str(e.value)
    assert not list(out.glob("*.png"))


def test_tiff_and_gif_are_found_in_folders(ibug_pts_image, tmp_path):
    img = cv2.imread(str(ibug_pts_image[0]))
    for name in ("a.tif", "b.tiff", "c.gif", "d.png"):
        assert cv2.imwrite(str(tmp_path / name), img)
    assert [n for _, n in plan_outputs([str(tmp_path)])] == ["a", "b", "c", "d"]
    assert read_image(tmp_path / "c.gif").shape == img.shape


def test_png_transparency_is_named_in_one_warning(ibug_pts_image, tmp_path, caplog):
    bgr = cv2.imread(str(ibug_pts_image[0]))
    alpha = np.full(bgr.shape[:2], 255, np.uint8)
    alpha[: bgr.shape[0] // 4] = 0  # the top quarter see-through
    p = tmp_path / "cutout.png"
    assert cv2.imwrite(str(p), np.dstack([bgr, alpha]))
    with caplog.at_level("WARNING", logger="deocc_core.imageio"):
        rgb = read_image(p)
    assert rgb.shape == bgr.shape
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and str(p) in msgs[0] and "25.0% of its pixels" in msgs[0], msgs
    caplog.clear()
    read_image(ibug_pts_image[0])  # an opaque photo: nothing said
    assert not caplog.records
