"""deocc-eval of a given-mask G (blend given): the segmenter's m̂ and the true mask, and the
``render`` baseline (the prefill alone) in the same masks as Telea. Real-face synthetic shards
(the session's tiny_shards) and the shipped segmenter."""

from __future__ import annotations

import pytest

from deocc_core.errors import ConfigError
from deocc_core.eval.evaluate import EvalConfig, evaluate


def test_a_given_G_is_scored_in_m_hat_and_the_true_mask_beside_render_and_telea(
    tiny_shards, generator_checkpoint, tmp_path
):
    r = evaluate(
        EvalConfig(
            shards=str(tiny_shards),
            out=str(tmp_path / "e"),
            checkpoints=(("g", str(generator_checkpoint("given"))),),
            baselines=("input", "telea", "render"),
            limit=1,
        )
    )
    assert r.segmenters == {"g": "default"}  # auto: the shipped segmenter for a given G
    assert list(r.table) == [
        *("g", "g@true", "g:raw", "input", "telea", "telea@true", "telea@g"),
        *("render", "render@true", "render@g"),
    ]
    # an untrained given G is its prefill: in the true mask, exactly the render baseline
    assert r.table["g@true"]["all"] == r.table["render@true"]["all"]
    assert r.table["render@true"]["all"] != r.table["telea@true"]["all"]
    for m in r.table:  # identity columns for every row
        assert 0 <= r.table[m]["all"]["id_dist"] < 2 and "id_same" in r.table[m]["all"]
    assert 0 <= r.table["g"]["all"]["mask_iou"] <= 1
    # the segmenter's m̂ as predicted is scored beside the grown region the fill pastes over
    assert 0 <= r.table["g"]["all"]["seg_iou"] <= 1
    md = (tmp_path / "e" / "results.md").read_text()
    assert "render@true" in md and "| g (m̂ as predicted) |" in md


def test_segmenter_none_is_refused_for_a_given_G_unless_only_the_true_mask_is_scored(
    tiny_shards, generator_checkpoint, tmp_path
):
    ckpt = (("g", str(generator_checkpoint("given"))),)
    cfg = dict(shards=str(tiny_shards), checkpoints=ckpt, segmenter="none", identity=False)
    with pytest.raises(ConfigError, match="given-mask generator"):
        evaluate(EvalConfig(out=str(tmp_path / "a"), **cfg))
    r = evaluate(
        EvalConfig(
            out=str(tmp_path / "b"), mask_source="true", baselines=("render",), limit=2, **cfg
        )
    )
    assert list(r.table) == ["g@true", "g:raw", "render", "render@true"]
    assert r.table["g@true"]["all"] == r.table["render@true"]["all"]


def test_photos_with_a_given_G_fill_the_shipped_segmenter_s_mask(
    shared_data, generator_checkpoint, tmp_path
):
    from deocc_core.eval.photos import evaluate_photos

    folder = shared_data / "faces_bulk" / "face_mask_detection" / "with_mask"
    if not folder.is_dir():
        pytest.skip(f"{folder} missing (real masked photos)")
    ckpt = (("g", str(generator_checkpoint("given"))),)
    r = evaluate_photos(
        EvalConfig(photos=str(folder), out=str(tmp_path), checkpoints=ckpt, limit=1, device="cpu")
    )
    assert r.segmenter == "default" and "segmenter default" in r.model
    assert r.n_faces == 1 and 0 <= r.mask_area_face[0] < 1
    assert (tmp_path / "photos_sheet.png").is_file()
    with pytest.raises(ConfigError, match="given-mask generator"):
        evaluate_photos(
            EvalConfig(
                photos=str(folder), out=str(tmp_path / "n"), checkpoints=ckpt, segmenter="none"
            )
        )


def test_eval_default_reports_a_given_model_without_its_own_m_hat_rows(
    tiny_shards, generator_checkpoint, tmp_path
):
    """tools.eval_default's RESULTS section from a real deocc-eval of a given G (one m̂ run)."""
    import json

    from tools.eval_default import _masks, section

    ckpt = generator_checkpoint("given")
    assert _masks(ckpt) == {"": "auto"}  # no --segmenter none run for a given-mask model
    evaluate(
        EvalConfig(
            shards=str(tiny_shards),
            out=str(tmp_path / "e"),
            checkpoints=(("default", str(ckpt)),),
            baselines=("input", "telea", "render"),
            limit=1,
        )
    )
    r = json.loads((tmp_path / "e" / "results.json").read_text())
    photos = {"": {"n_photos": 1, "n_with_face": 1, "n_faces": 1, "skipped": {}}}
    text = section({"own": r, "held_out": r}, photos, ["cmd"])
    assert "given-mask G" in text and "(G's m̂) |" not in text
    assert "G vs the render fill vs Telea, given the true mask" in text
    assert "| render@default |" in text
