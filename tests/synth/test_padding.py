"""--max-padding: faces whose crop window leaves the photo are skipped (no edge-replica streaks)."""

from __future__ import annotations

import numpy as np

from deocc_core.face.align import crop_matrix, outside_share
from deocc_core.imageio import read_image, write_image
from deocc_core.landmarks.readers import read_pts, write_pts
from deocc_core.synth.pipeline import BuildConfig, build


def test_a_tight_photo_is_skipped_and_the_whole_photo_kept(ibug_pts_image, tmp_path):
    """The real iBUG photo (face well inside) is built with deocc-face, the default model of
    photo builds; the same face cut to its landmark box leaves most of the crop window outside.
    """
    img_path, pts_path = ibug_pts_image
    image, lm = read_image(img_path), read_pts(pts_path)
    x0, y0 = np.floor(lm.min(0)).astype(int)
    x1, y1 = np.ceil(lm.max(0)).astype(int) + 1
    tight, tight_lm = image[y0:y1, x0:x1], lm - [x0, y0]
    assert outside_share(crop_matrix(lm, 64), 64, image.shape[:2]) == 0.0
    assert outside_share(crop_matrix(tight_lm, 64), 64, tight.shape[:2]) > 0.5
    photos = tmp_path / "photos"
    photos.mkdir()
    write_image(photos / "whole.png", image)
    write_pts(photos / "whole.pts", lm)
    write_image(photos / "tight.png", tight)
    write_pts(photos / "tight.pts", tight_lm)
    cfg = BuildConfig(
        source="folder",
        root=str(photos),
        out=str(tmp_path / "shards"),
        size=64,
        per_shard=4,
        test_fraction=0.0,
        fit_landmarks="annotated",
        workers=1,
    )
    r = build(cfg)
    assert r.skipped_inputs == {"crop outside the photo (--max-padding)": 1}
    assert sum(r.samples.values()) == 1 and r.manifest["model"]["name"] == "deocc-face"


def test_max_padding_off_keeps_older_build_hashes():
    """1 (off) is what builds did before the option: left out of the hashed content; the
    synthetic source never checks it, so its builds keep their hashes at any value."""
    photo = BuildConfig(source="folder", root="x", out="o", size=64)
    assert photo.model == "deocc-face" and photo.content()["max_padding"] == 0.1
    off = BuildConfig(source="folder", root="x", out="o", size=64, max_padding=1.0)
    assert "max_padding" not in off.content()
    syn = BuildConfig(source="synthetic", out="o", size=64)
    assert syn.model == "starter" and "max_padding" not in syn.content()
