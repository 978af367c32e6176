"""deocc-eval --photos on real masked photos (no ground truth)."""

from __future__ import annotations

import json

import pytest

from deocc_core.eval.evaluate import EvalConfig
from deocc_core.eval.photos import evaluate_photos


def test_real_masked_photos_give_faces_found_skips_and_mask_areas(
    shared_data, generator_checkpoint, tmp_path
):
    folder = shared_data / "faces_bulk" / "face_mask_detection" / "with_mask"
    if not folder.is_dir():
        pytest.skip(f"{folder} missing (real masked photos)")
    r = evaluate_photos(
        EvalConfig(
            photos=str(folder),
            out=str(tmp_path),
            checkpoints=(("g", str(generator_checkpoint("mask", 20.0))),),  # m̂ ≡ 1
            limit=3,
            device="cpu",
        )
    )
    assert r.n_photos == 3 and 1 <= r.n_with_face <= 3
    assert r.n_faces == len(r.mask_area) == len(r.mask_area_face)
    # m̂ ≡ 1 covers the whole crop and the whole face silhouette
    assert min(r.mask_area) == pytest.approx(1.0) and min(r.mask_area_face) == pytest.approx(1.0)
    data = json.loads((tmp_path / "photos.json").read_text())
    assert len(data["photos"]) == 3
    assert sum(len(p["faces"]) for p in data["photos"]) == r.n_faces
    html = (tmp_path / "report.html").read_text()
    assert "<img src='data:image/png;base64," in html and "with a face processed" in html
    assert r.segmenter == "none"  # auto with a user's checkpoint: G's own m̂, as deocc-infer
    # --segmenter default: the shipped segmenter's m̂ decides, not G's m̂ ≡ 1
    s = evaluate_photos(
        EvalConfig(
            photos=str(folder),
            out=str(tmp_path / "seg"),
            checkpoints=(("g", str(generator_checkpoint("mask", 20.0))),),
            segmenter="default",
            limit=1,
            device="cpu",
        )
    )
    assert s.segmenter == "default" and "segmenter default" in s.model
    # (at this test G's 64 px the 128-px segmenter marks little; ignored, m̂ would be 1)
    assert s.n_faces == 1 and s.mask_area_face[0] < 0.9
