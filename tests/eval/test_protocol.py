"""Occluder families of a test set and the ones a checkpoint never trained on."""

from __future__ import annotations

from deocc_core.eval.protocol import occluder_families, occluder_protocol


def test_real_cutouts_only_are_held_out_from_a_3d_trained_model(occluders_dir, tmp_path):
    # the real cut-outs minus the 5638 px glasses frame (slow to read): links, no copies
    mtf = tmp_path / "MaskTheFace" / "masks"
    mtf.mkdir(parents=True)
    for name in ("masks.cfg", "templates"):
        (mtf / name).symlink_to(occluders_dir / "MaskTheFace" / "masks" / name)
    for name in ("mask.png", "sunglass.png"):
        (tmp_path / name).symlink_to(occluders_dir / "Face-Image-Occlusions" / name)
    test = {
        "occluders": ["mask", "eyeglasses", "sunglasses"],
        "occluder_assets": str(tmp_path),
        "asset_share": 1.0,
    }
    train = {"occluders": ["mask", "eyeglasses", "cup"], "occluder_mode": "3d"}
    p = occluder_protocol(test, {"data_config": {"config": [train]}})
    # MaskTheFace views are one family; Face-Image-Occlusions' cut-outs by name
    assert {"asset:surgical_blue", "asset:mask", "asset:sunglass"} <= set(p["held_out"])
    assert "deocc-3d:eyeglasses" in p["test_families"]  # no real eyeglasses here: ours
    assert sum(f.startswith("deocc-") for f in p["test_families"]) == 1
    assert p["train_families"] == ["deocc-3d:cup", "deocc-3d:eyeglasses", "deocc-3d:mask"]
    # the default share mixes our objects in: nothing of them is held out
    mixed = occluder_families([{**test, "asset_share": 0.3}])
    assert "deocc-3d:mask" in mixed and "asset:sunglass" in mixed
    assert occluder_protocol(train, {"data_config": {"config": [train]}})["held_out"] == []
    assert occluder_protocol(train, None)["held_out"] is None
