"""A given-mask G's training: the loader's jittered mask and prefill, the trainer, --init."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _train_config import tiny_train_config

from deocc_core.data.augment import jitter_mask
from deocc_core.data.dataset import ShardDataset
from deocc_core.errors import ConfigError
from deocc_core.nets.checkpoint import load_checkpoint
from deocc_core.nets.packaged import export_generator
from deocc_core.train import train


def _cfg(shards, out, **kw):
    return tiny_train_config(
        shards, out, **{**dict(blend="given", l1_hole=10.0, log_every=1, seed=1), **kw}
    )


def _samples(shards, n=8, **kw):
    ds = ShardDataset(shards, "train", given_mask=True, seed=3, **kw)
    it = iter(ds)
    return [next(it) for _ in range(n)]


def test_jitter_mask_dilates_mostly_and_has_a_soft_edge():
    m = np.zeros((128, 128), np.uint8)
    m[40:80, 30:90] = 255
    outs = [jitter_mask(m, np.random.default_rng(s)) for s in range(40)]
    area = np.array([(o > 0.5).sum() for o in outs])
    true = (m > 0).sum()
    assert (area > true).mean() > 0.5 and (area < true).any()  # dilations, some erosions
    assert all(o.min() == 0.0 and o.max() == 1.0 for o in outs)
    assert all(((o > 0) & (o < 1)).any() for o in outs)  # a soft edge
    assert (area <= (40 + 8) * (60 + 8)).all()  # at most 3 px (+ the edge) at 128 px


def test_loader_yields_a_seeded_given_mask_and_a_prefill_that_keeps_the_crop(tiny_shards):
    a, b = _samples(tiny_shards), _samples(tiny_shards)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x["given_mask"], y["given_mask"]) and torch.equal(
            x["prefill"], y["prefill"]
        )
    x = a[0]
    assert x["given_mask"].shape == (1, 64, 64) and x["prefill"].shape == (3, 64, 64)
    filled = 0
    for x in a:
        g = x["given_mask"][0]
        outside = (g == 0).expand(3, -1, -1)
        assert torch.equal(x["prefill"][outside], x["occluded"][outside])
        hole = (g > 0.5).expand(3, -1, -1)
        filled += int((x["prefill"][hole] != x["occluded"][hole]).sum())
        # the jitter stays near the occluder: most of the given mask is on it
        occ = x["occ_mask"][0] > 0.5
        if occ.sum() > 20:
            assert (occ & (g > 0.5)).sum() >= 0.5 * occ.sum()
    assert filled > 0


def test_no_render_prefill_never_uses_the_render(tiny_shards):
    with_r = _samples(tiny_shards, prefill_render=True)
    without = _samples(tiny_shards, prefill_render=False)
    diff = 0
    for x, y in zip(with_r, without, strict=True):
        assert torch.equal(x["given_mask"], y["given_mask"])
        diff += int((x["prefill"] != y["prefill"]).sum())
    assert diff > 0


def test_given_run_validates_at_step_0_and_learns_inside_the_mask(tiny_shards, tmp_path):
    r = train(_cfg(tiny_shards, tmp_path / "run", max_steps=4, stage2_steps=1, val_every=4))
    lines = [json.loads(s) for s in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert lines[0]["step"] == 0 and "val_psnr_occ" in lines[0] and "val_mask_iou" not in lines[0]
    assert any("loss_l1_hole" in ln for ln in lines) and not any("loss_mask" in ln for ln in lines)
    assert r.steps == 4 and "val_psnr_occ" in r.val
    assert list((tmp_path / "run" / "samples").glob("val_step_0000000.png"))
    state = load_checkpoint(r.latest)
    assert state["config"]["blend"] == "given" and state["G"]  # G's weights saved
    # G's input: prefill ⊕ render ⊕ mask (7 channels)
    first = next(k for k in state["G"] if k.endswith("weight"))
    assert state["G"][first].shape[1] == 7


def test_init_loads_matching_weights_records_the_file_and_refuses_bad_uses(
    tiny_shards, tmp_path, caplog
):
    a = train(_cfg(tiny_shards, tmp_path / "a", max_steps=2, stage2_steps=0))
    src = load_checkpoint(a.latest)
    with caplog.at_level("INFO"):
        b = train(
            _cfg(tiny_shards, tmp_path / "b", max_steps=1, stage2_steps=0, init=str(a.run_dir))
        )
    n = sum(v.is_floating_point() for v in src["G"].values())
    assert f"init: {n} of {n} generator tensors from" in caplog.text
    state = load_checkpoint(b.latest)
    assert state["init"]["sha256"] and state["step"] == 1
    saved = json.loads((tmp_path / "b" / "config.json").read_text())
    assert saved["init"] == str(a.run_dir) and saved["init_sha256"] == state["init"]["sha256"]
    # Adam restarted: one step from A's weights, not A's optimizer (its step count is 1)
    assert all(int(s["step"]) == 1 for s in state["opt_G"]["state"].values())

    pkg = export_generator(a.latest, tmp_path / "g.safetensors", half=False)
    c = _cfg(
        tiny_shards, tmp_path / "c", max_steps=1, stage2_steps=0, init=str(pkg.path), lr_stage1=0.0
    )
    out = train(c)
    got = load_checkpoint(out.latest)["G"]
    assert all(torch.equal(got[k], src["G"][k]) for k in src["G"] if k.endswith("weight"))

    with pytest.raises(ConfigError, match="--resume"):
        train(_cfg(tiny_shards, tmp_path / "a", max_steps=3, init=str(a.latest)), resume=True)
    with pytest.raises(ConfigError, match="no generator tensor matches"):
        train(
            _cfg(tiny_shards, tmp_path / "d", max_steps=1, ngf=12, blend="mask", init=str(a.latest))
        )


def test_no_render_given_run_reads_prefill_and_mask_only(tiny_shards, tmp_path):
    r = train(_cfg(tiny_shards, tmp_path / "nr", max_steps=2, stage2_steps=0, no_render=True))
    G = load_checkpoint(r.latest)["G"]
    first = next(k for k in G if k.endswith("weight"))
    assert G[first].shape[1] == 4  # prefill (Telea) ⊕ mask: the render never enters
