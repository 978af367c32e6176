"""Metrics against scikit-image and by hand, baselines, the evaluation table and report."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from deocc_core.errors import ConfigError
from deocc_core.eval.baselines import run_baseline
from deocc_core.eval.evaluate import EvalConfig, evaluate
from deocc_core.eval.metrics import masked_psnr, score
from deocc_core.synth.manifest import read_manifest


def test_metrics_match_references():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[8:20, 4:30] = True
    s = score(pred, gt, mask)
    assert s.psnr == pytest.approx(peak_signal_noise_ratio(gt, pred, data_range=255))
    d = (pred.astype(float) - gt)[mask]
    assert masked_psnr(pred, gt, mask) == pytest.approx(10 * np.log10(255**2 / (d**2).mean()))
    assert s.ssim_mask < 1 and score(gt, gt, mask).ssim == pytest.approx(1.0)


def test_oracle_inpainting_beats_the_occluded_input_in_the_mask(tiny_shards):
    from deocc_core.synth.shards import ShardReader
    from deocc_core.synth.verify import shard_paths

    gains = []
    with ShardReader(shard_paths(tiny_shards, "test")[0]) as r:
        for i in range(len(r)):
            s = r.sample(i)
            m = s.occ_mask > 0
            gains.append(
                masked_psnr(run_baseline("telea", s.occluded, s.occ_mask), s.gt, m)
                - masked_psnr(s.occluded, s.gt, m)
            )
    assert np.median(gains) > 0


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_evaluate_groups_counts_and_writes_a_report(tiny_shards, tiny_run, tmp_path):
    r = evaluate(
        EvalConfig(
            shards=str(tiny_shards),
            out=str(tmp_path),
            checkpoints=(("tiny", str(tiny_run)),),
            baselines=("input", "telea"),
            identity=False,
        )
    )
    m = read_manifest(tiny_shards)["splits"]["test"]
    assert r.n_samples == m["samples"]
    for region, n in m["regions"].items():
        assert r.table["tiny"][f"region:{region}"]["n"] == n
    for cls, n in m["classes"].items():
        assert r.table["telea"][f"class:{cls}"]["n"] == n
    p = _Tags()
    p.feed((tmp_path / "report.html").read_text())
    assert p.tags.count("table") >= 3 and "img" in p.tags
    assert "27.32" in (tmp_path / "results.md").read_text()  # the paper's row for reference
    assert json.loads((tmp_path / "results.json").read_text())["n_samples"] == r.n_samples


def test_checkpoint_of_another_resolution_is_refused(tiny_run, tmp_path):
    from deocc_core.synth.pipeline import BuildConfig, build

    build(
        BuildConfig(
            source="synthetic",
            out=str(tmp_path / "s32"),
            size=32,
            per_shard=8,
            n_synthetic=40,
            test_fraction=0.5,
        )
    )
    with pytest.raises(ConfigError, match="64 px"):
        evaluate(
            EvalConfig(
                shards=str(tmp_path / "s32"),
                out=str(tmp_path / "e"),
                checkpoints=(("tiny", str(tiny_run)),),
            )
        )


def test_limit_missing_split_and_unknown_baseline(tiny_shards, tmp_path):
    r = evaluate(
        EvalConfig(
            shards=str(tiny_shards),
            out=str(tmp_path),
            baselines=("input", "ns"),
            limit=3,
            identity=False,
        )
    )
    assert r.n_samples == 3 and r.table["ns"]["all"]["n"] == 3
    # the occluded input is the ground truth outside the occluder: its whole-crop PSNR is
    # finite and below the masked-out ideal
    assert r.table["input"]["all"]["psnr"] > r.table["input"]["all"]["psnr_mask"]
    with pytest.raises(ConfigError, match="no 'holdout' split"):
        evaluate(EvalConfig(shards=str(tiny_shards), out=str(tmp_path), split="holdout"))
    with pytest.raises(ConfigError, match="'run' used twice"):
        evaluate(
            EvalConfig(
                shards=str(tiny_shards), out=str(tmp_path), checkpoints=(("run", "a"), ("run", "b"))
            )
        )
    with pytest.raises(ConfigError, match="unknown baseline 'gan'"):
        evaluate(EvalConfig(shards=str(tiny_shards), out=str(tmp_path), baselines=("gan",)))


def test_each_checkpoint_scores_the_pasted_output_and_the_raw_output(
    tiny_shards, generator_checkpoint, tmp_path
):
    from deocc_core.nets.packaged import export_generator

    blank = export_generator(generator_checkpoint("mask", -20.0), tmp_path / "blank.safetensors")
    r = evaluate(
        EvalConfig(
            shards=str(tiny_shards),
            out=str(tmp_path / "e"),
            checkpoints=(
                ("blank", str(blank.path)),
                ("all", str(generator_checkpoint("mask", 20.0))),
            ),
            baselines=("input", "telea"),  # ns: the same code path, left out to save time
            limit=4,
        )
    )
    assert list(r.table) == [
        *("blank", "blank@true", "blank:raw", "all", "all@true", "all:raw", "input"),
        *("telea", "telea@true", "telea@blank"),
    ]
    # m̂ ≡ 0: what a user gets is the occluded input, bit for bit; G's raw output is not
    assert {k: v for k, v in r.table["blank"]["all"].items() if k != "mask_iou"} == r.table[
        "input"
    ]["all"]
    assert r.table["blank:raw"]["all"]["psnr"] < r.table["input"]["all"]["psnr"]
    # m̂ ≡ 1: the crop is G's output except where the crop border fades back to the input
    assert r.table["all"]["all"] != r.table["all:raw"]["all"]
    assert r.table["all"]["all"]["psnr_mask"] == pytest.approx(
        r.table["all:raw"]["all"]["psnr_mask"], abs=0.5
    )
    # Telea inside the blank model's empty m̂ inpaints nothing: the occluded input again
    assert r.table["telea@blank"]["all"] == r.table["input"]["all"]
    assert r.table["blank"]["all"]["mask_iou"] == 0.0 and "mask_iou" not in r.table["telea"]["all"]
    # the true mask: G's raw output exactly there (the occluder object lies inside it)
    assert r.table["blank@true"]["all"]["psnr_mask"] == pytest.approx(
        r.table["blank:raw"]["all"]["psnr_mask"]
    )
    assert r.table["blank@true"]["all"]["psnr"] > r.table["blank:raw"]["all"]["psnr"]
    for m in r.table:  # identity columns for every row: a distance and a share
        a = r.table[m]["all"]
        assert a["id_dist"] > 0 and 0 <= a["id_same"] <= 1
    md = (tmp_path / "e" / "results.md").read_text()
    assert "| blank:raw |" in md and "pasted into the occluded crop" in md
    assert "## Identity" in md and "IoU with the occluder object" in md


def test_damaged_manifest_or_shard_is_one_error_naming_the_file(tiny_shards, tmp_path):
    import shutil

    from deocc_core.errors import FormatError
    from deocc_core.synth.verify import shard_paths

    copy = tmp_path / "shards"
    shutil.copytree(tiny_shards, copy)
    for text in ("", "[1, 2]"):  # empty; JSON but not a manifest
        (copy / "manifest.json").write_text(text)
        with pytest.raises(FormatError, match="manifest.json: "):
            evaluate(EvalConfig(shards=str(copy), out=str(tmp_path / "e"), identity=False))
    shutil.copy(tiny_shards / "manifest.json", copy / "manifest.json")
    shard = shard_paths(copy, "test")[0]
    import h5py

    with h5py.File(shard, "r") as f:  # invert bytes inside sample 1's compressed image chunk
        info = f["occluded"].id.get_chunk_info(1)
    with open(shard, "r+b") as f:
        f.seek(info.byte_offset + info.size // 2 - 32)
        b = f.read(64)
        f.seek(info.byte_offset + info.size // 2 - 32)
        f.write(bytes(x ^ 0xFF for x in b))
    with pytest.raises(FormatError, match=shard.name):
        evaluate(
            EvalConfig(
                shards=str(copy), out=str(tmp_path / "e"), baselines=("input",), identity=False
            )
        )


def test_segmenter_m_hat_is_what_infer_pastes(tiny_shards, generator_checkpoint, tmp_path):
    """--segmenter: NAME's m̂, IoU and pasted output are deocc-infer's for the same crop."""
    from types import SimpleNamespace

    from deocc_core.eval.evaluate import mask_iou
    from deocc_core.infer.paste import IDENTITY, paste_back
    from deocc_core.infer.pipeline import _face_output
    from deocc_core.nets.io import prepare_generator, run_generator
    from deocc_core.nets.packaged import default_model_path, resolve_generator
    from deocc_core.nets.segmenter import (
        default_segmenter_path,
        load_segmenter,
        resolve_segmenter,
        run_segmenter,
    )
    from deocc_core.synth.shards import ShardReader
    from deocc_core.synth.verify import shard_paths

    if not default_segmenter_path().is_file():
        pytest.skip("assets/segmenter.safetensors is not in this checkout")
    ckpt = generator_checkpoint("mask", 0.0)  # G's own m̂ ≡ 0.5 everywhere
    runs = {}
    for seg in ("none", "default"):
        cfg = EvalConfig(
            shards=str(tiny_shards),
            out=str(tmp_path / seg),
            checkpoints=(("g", str(ckpt)),),
            baselines=("input",),
            mask_source="predicted",
            segmenter=seg,
            identity=False,
            limit=2,
        )
        r = evaluate(cfg)
        assert r.segmenters == {"g": seg}
        runs[seg] = json.loads((tmp_path / seg / "results.json").read_text())
        assert runs[seg]["segmenter"] == {"g": seg}
    assert "the shipped occlusion segmenter" in (tmp_path / "default" / "results.md").read_text()
    # auto, deocc-infer's policy: a user's checkpoint keeps G's own m̂, the shipped G does not
    assert resolve_segmenter("auto", ckpt)[1] == "none"
    assert resolve_segmenter("auto", default_model_path())[1] == "default"

    G, spec, _ = resolve_generator(ckpt, "cpu")
    G = prepare_generator(G)
    seg_net = load_segmenter(default_segmenter_path())[0]
    path = shard_paths(tiny_shards, "test")[0]
    with ShardReader(path) as rd:
        b = {k: rd.dataset(k)[:2] for k in ("occluded", "render", "gt", "occ_mask", "face_mask")}
    g = run_generator(G, b["occluded"], b["render"], spec, "cpu")
    m_hat = run_segmenter(seg_net, b["occluded"])
    for k, (sample, g_sample) in enumerate(
        zip(runs["default"]["samples"], runs["none"]["samples"], strict=True)
    ):
        assert (sample["shard"], sample["index"]) == (path.name, k)
        face = SimpleNamespace(crop=b["occluded"][k], face_mask=b["face_mask"][k])
        fo = _face_output(face, g.output[k], g.raw[k], g.mask[k], spec, None, m_hat[k])
        pasted = paste_back(b["occluded"][k], fo.output, IDENTITY, fo.weight)[0]
        want = score(pasted, b["gt"][k], b["occ_mask"][k] > 0)
        assert sample["g"]["psnr"] == pytest.approx(want.psnr)
        assert sample["g"]["ssim"] == pytest.approx(want.ssim)
        iou = mask_iou(fo.mask, b["occ_mask"][k])
        assert sample["g"]["mask_iou"] == pytest.approx(iou, nan_ok=True)
        # G's m̂ ≡ 0.5 is a different mask: its IoU and its pasted output differ
        assert g_sample["g"]["mask_iou"] != pytest.approx(iou, nan_ok=True)
        assert g_sample["g"]["psnr"] != pytest.approx(want.psnr)
