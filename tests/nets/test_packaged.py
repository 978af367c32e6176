"""Packaged generators: the safetensors reader/writer, export, the model card, the default model."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest
import torch

from deocc_core.errors import FormatError, InputError
from deocc_core.nets import packaged
from deocc_core.nets.io import load_generator, prepare_generator, run_generator
from deocc_core.nets.packaged import (
    export_generator,
    load_packaged_generator,
    model_card,
    read_safetensors,
    resolve_generator,
    write_safetensors,
)


def test_safetensors_round_trip_is_exact_and_byte_deterministic(tmp_path):
    t = {
        "b.weight": torch.randn(3, 4, 2, 2).half(),
        "a.running_var": torch.rand(5),
        "a.num_batches_tracked": torch.tensor(7),
        "empty": torch.zeros(0, 3),
    }
    p1 = write_safetensors(tmp_path / "1.safetensors", t, {"k": "v"})
    p2 = write_safetensors(tmp_path / "2.safetensors", dict(reversed(t.items())), {"k": "v"})
    assert p1.read_bytes() == p2.read_bytes()
    back, meta = read_safetensors(p1)
    assert meta == {"k": "v"} and set(back) == set(t)
    for k, v in t.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v)
    (n,) = struct.unpack("<Q", p1.read_bytes()[:8])
    assert n % 8 == 0  # header padded as the safetensors library does


def _forge(path, header: dict, body: bytes = b"") -> None:
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + body)


@pytest.mark.parametrize(
    "header, body, message",
    [
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "shape"),
        ({"w": {"dtype": "OBJ", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8, "dtype"),
        (
            {
                "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]},
            },
            b"\0" * 6,
            "overlaps",
        ),
        ({"w": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}, b"\0" * 5, "trailing"),
        ({"__metadata__": {"k": 1}}, b"", "metadata"),
    ],
)
def test_forged_files_are_refused(tmp_path, header, body, message):
    p = tmp_path / "x.safetensors"
    _forge(p, header, body)
    with pytest.raises(FormatError, match=message):
        read_safetensors(p)


def test_garbage_and_missing_files_are_refused(tmp_path):
    p = tmp_path / "x.safetensors"
    p.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(FormatError, match="header length"):
        read_safetensors(p)
    p.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{}")
    with pytest.raises(FormatError, match="not JSON"):
        read_safetensors(p)
    with pytest.raises(InputError, match="not found"):
        read_safetensors(tmp_path / "missing.safetensors")
    write_safetensors(p, {"w": torch.ones(2)}, {"format": "something else"})
    with pytest.raises(FormatError, match="not a deocc generator"):
        load_packaged_generator(p)


def test_export_loads_back_and_matches_the_checkpoint(tmp_path, generator_checkpoint):
    ckpt = generator_checkpoint("mask")
    r1 = export_generator(ckpt, tmp_path / "g.safetensors")
    r2 = export_generator(ckpt, tmp_path / "h.safetensors")
    assert r1.sha256 == r2.sha256 == hashlib.sha256(r1.path.read_bytes()).hexdigest()
    assert r1.dtype == "float16" and r1.bytes < 2.2 * r1.n_params  # fp16: 2 bytes a parameter
    G32, spec32, _ = load_generator(ckpt)
    G16, spec16, info = resolve_generator(r1.path)
    assert spec16 == spec32 and spec16.blend == "mask" and not G16.training
    assert info["path"] == str(r1.path) and "packaged" in info["label"]
    assert info["data_model"]["name"] == "deocc-starter"
    rng = np.random.default_rng(0)
    occ, ren = (rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8) for _ in range(2))
    a = run_generator(prepare_generator(G32), occ, ren, spec32)
    b = run_generator(prepare_generator(G16), occ, ren, spec16)
    assert np.abs(a.raw.astype(int) - b.raw).max() <= 3  # fp16 weights: a few grey levels
    assert np.abs(a.mask - b.mask).max() < 0.02
    full = export_generator(ckpt, tmp_path / "f.safetensors", half=False)
    G, _, _ = load_packaged_generator(full.path)
    c = run_generator(prepare_generator(G), occ, ren, spec32)
    assert np.array_equal(a.raw, c.raw) and np.array_equal(a.mask, c.mask)


def test_model_card_says_what_the_model_is(tmp_path, generator_checkpoint):
    r = export_generator(generator_checkpoint("mask"), tmp_path / "g.safetensors")
    scores = {
        "config": {"split": "test", "shards": "SH"},
        "n_samples": 9,
        "table": {"m": {"all": {"psnr": 20.0, "ssim": 0.8, "psnr_mask": 12.5, "ssim_mask": 0.4}}},
    }
    card = model_card(r, scores=scores, commands=("make it",), data_note="real faces")
    for text in ("Research use only", "64 px", "blend `mask`", r.sha256, "| m | 20.00 / 0.8000 |"):
        assert text in card
    assert "make it" in card and "real faces" in card
    assert card == model_card(r, scores=scores, commands=("make it",), data_note="real faces")


def test_model_card_of_a_merged_shard_folder_names_each_build(tmp_path, generator_checkpoint):
    import dataclasses

    r = export_generator(generator_checkpoint("mask"), tmp_path / "g.safetensors")
    builds = [{"source": "folder", "root": "/a", "seed": 0}, {"source": "synthetic", "seed": 1}]
    merged = dataclasses.replace(r, info={**r.info, "data_config": {"config": builds}})
    card = model_card(merged, scores=None, commands=(), data_note="")
    assert "source `folder`, root `/a`" in card and "source `synthetic`" in card


def test_missing_default_model_is_one_line_saying_where(monkeypatch):
    monkeypatch.setattr(packaged, "DEFAULT_MODEL", "no_such_model.safetensors")
    with pytest.raises(InputError) as e:
        packaged.default_model_path()
    msg = str(e.value)
    assert "\n" not in msg and "no_such_model.safetensors" in msg and "assets" in msg
    assert "--ckpt" in msg


def test_the_shipped_default_model_de_occludes_a_real_masked_photo(shared_data, tmp_path):
    from deocc_core.infer.run import InferConfig, run_inference

    try:
        path = packaged.default_model_path()
    except InputError:
        pytest.skip("no default model in assets/ yet")
    G, spec, info = resolve_generator(None)
    assert info["label"].startswith("default model") and spec.blend in ("mask", "none", "given")
    photos = shared_data / "faces" / "eos_examples"
    r = run_inference(
        InferConfig(
            inputs=(str(photos / "image_0010.png"),),
            out=str(tmp_path),
            landmarks_from="pts",
            device="cpu",
        )
    )
    assert str(path) in r.model and r.n_faces == 1 and r.error is None
    from deocc_core.imageio import read_image

    out = read_image(tmp_path / "image_0010_deoccluded.png")
    weight = read_image(tmp_path / "image_0010_mask.png")[..., 0]
    photo = read_image(photos / "image_0010.png")
    assert np.array_equal(out[weight == 0], photo[weight == 0])
    assert (tmp_path / "image_0010_face0_mask.png").is_file()


def test_export_tool_writes_weights_and_card_deterministically(tmp_path, generator_checkpoint):
    from typer.testing import CliRunner

    from tools.export_default_model import app

    ckpt = generator_checkpoint("mask")
    scores = tmp_path / "results.json"
    scores.write_text(json.dumps({"config": {"split": "test"}, "n_samples": 3, "table": {}}))

    def export(out):
        args = [str(ckpt), "--out", str(out), "--scores", str(scores), "--data-note", "tiny"]
        return CliRunner().invoke(app, args)

    r = export(tmp_path / "a" / "m.safetensors")
    assert r.exit_code == 0, r.output
    first = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    assert sorted(first) == ["m.md", "m.safetensors"]
    assert export(tmp_path / "a" / "m.safetensors").exit_code == 0
    assert first == {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    card = first["m.md"].decode()
    assert "Research use only" in card and "tiny" in card and "tools.export_default_model" in card
    assert "deocc-train" in card  # the training command, rebuilt from the run's config
    r = export(tmp_path / "a" / "m.pt")
    assert r.exit_code == 2 and "must end in .safetensors" in r.output


def test_a_given_mask_generator_exports_and_loads_back_with_its_blend(
    tmp_path, generator_checkpoint
):
    """blend given: 7 input channels, the segmenter it fills recorded, the card says both;
    the fp16 round trip keeps G's outputs (a trained-like G: random last layer)."""
    from deocc_core.nets.checkpoint import load_checkpoint, save_checkpoint
    from deocc_core.nets.segmenter import default_segmenter_path

    state = load_checkpoint(generator_checkpoint("given"), "cpu")
    last = [k for k in state["G"] if k.endswith("weight")][-1]
    state["G"][last] = torch.randn_like(state["G"][last]) * 0.02
    ckpt = save_checkpoint(tmp_path / "given.pt", state)
    r = export_generator(ckpt, tmp_path / "g.safetensors")
    assert r.info["in_channels"] == 7 and r.info["config"]["blend"] == "given"
    seg_sha = hashlib.sha256(default_segmenter_path().read_bytes()).hexdigest()
    assert r.info["segmenter"] == {"name": "segmenter.safetensors", "sha256": seg_sha}
    G16, spec, info = resolve_generator(r.path)
    assert spec.blend == "given" and info["segmenter"]["sha256"] == seg_sha
    assert info["data_model"]["name"] == "deocc-starter"
    G32, spec32, _ = load_generator(ckpt)
    rng = np.random.default_rng(0)
    occ, ren, pre = (rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8) for _ in range(3))
    m = (rng.random((2, 64, 64)) > 0.5).astype(np.float32)
    a, b = (
        run_generator(prepare_generator(g), occ, ren, s, prefill=pre, given_mask=m)
        for g, s in ((G32, spec32), (G16, spec))
    )
    assert (a.raw != pre).any() and np.abs(a.raw.astype(int) - b.raw).max() <= 3
    assert np.array_equal(a.output[m == 0], occ[m == 0])
    card = model_card(r)
    for text in ("blend `given`", "prefill + 3DMM render + mask (7 channels)", seg_sha[:16]):
        assert text in card
