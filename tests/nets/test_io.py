"""Generator I/O: the uint8 <-> [-1, 1] conversion round-trips every value; run_generator is
G applied to that conversion (blended by m̂ for a mask-aware G); a saved generator loads back
with its spec (old checkpoints without ``blend`` as the paper's G)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deocc_core.errors import FormatError, InputError, ShapeError
from deocc_core.nets import blend_output, define_generator
from deocc_core.nets.checkpoint import save_checkpoint
from deocc_core.nets.io import (
    GeneratorResult,
    GeneratorSpec,
    images_to_tensor,
    load_generator,
    prepare_generator,
    run_generator,
    tensor_to_images,
)


def test_uint8_round_trip_is_exact_for_every_value():
    img = np.arange(256 * 3, dtype=np.int64).reshape(16, 16, 3).astype(np.uint8)
    t = images_to_tensor(img[None])
    assert t.shape == (1, 3, 16, 16) and t.dtype == torch.float32
    assert float(t.min()) == -1.0 and float(t.max()) == 1.0
    assert np.array_equal(tensor_to_images(t)[0], img)
    assert images_to_tensor(img[..., 0]).shape == (1, 16, 16)  # a plane gets a channel axis


@pytest.mark.parametrize("no_render", [False, True])
def test_run_generator_is_G_on_the_converted_crops(no_render):
    torch.manual_seed(0)
    spec = GeneratorSpec(size=32, ngf=4, no_render=no_render)
    G = prepare_generator(spec.build())
    rng = np.random.default_rng(0)
    occ, ren = (rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8) for _ in range(2))
    r = run_generator(G, occ, ren, spec)
    x = images_to_tensor(occ)
    if not no_render:
        x = torch.cat([x, images_to_tensor(ren)], 1)
    with torch.no_grad():
        want = ((G(x).clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1)
    assert isinstance(r, GeneratorResult) and r.output.shape == (2, 32, 32, 3)
    assert np.array_equal(r.output, want.numpy()) and np.array_equal(r.raw, r.output)
    assert r.mask.shape == (2, 32, 32) and r.mask.dtype == np.float32 and (r.mask == 1).all()
    one = run_generator(G, occ[1], ren[1], no_render)  # the old bool form still works
    assert np.array_equal(one.output, r.output[1]) and one.mask.shape == (32, 32)


def test_mask_aware_generator_blends_its_rgb_into_the_input():
    torch.manual_seed(0)
    spec = GeneratorSpec(size=32, ngf=4, blend="mask")
    G = prepare_generator(spec.build())
    rng = np.random.default_rng(1)
    occ, ren = (rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8) for _ in range(2))
    with torch.no_grad():  # a bias on the logit: m̂ far from 0.5 where the blend is checked
        G.model.model[-2].bias[3] = 0.0
    r = run_generator(G, occ, ren, spec)
    assert r.mask.shape == (2, 32, 32) and 0 <= r.mask.min() and r.mask.max() <= 1
    want = r.mask[..., None] * r.raw.astype(np.float64) + (1 - r.mask[..., None]) * occ
    assert np.abs(r.output - want).max() <= 1.0  # G's output is rounded before the blend here
    with torch.no_grad():
        G.model.model[-2].bias[3] = -200.0  # m̂ = 0 everywhere: the input comes back exactly
    assert np.array_equal(run_generator(G, occ, ren, spec).output, occ)
    with torch.no_grad():
        G.model.model[-2].bias[3] = 200.0  # m̂ = 1: G's own output
    r = run_generator(G, occ, ren, spec)
    assert np.array_equal(r.output, r.raw) and (r.mask == 1).all()
    with pytest.raises(ShapeError, match="blend='none'"):
        run_generator(G, occ, ren, GeneratorSpec(size=32, ngf=4))


def test_blend_output_formula_and_gradients():
    g = torch.randn(2, 4, 8, 8, requires_grad=True)
    occ = torch.rand(2, 3, 8, 8) * 2 - 1
    b = blend_output(g, occ)
    m = torch.sigmoid(g[:, 3:])
    torch.testing.assert_close(b.output, m * g[:, :3] + (1 - m) * occ)
    assert b.mask_logit is not None and b.raw.shape == (2, 3, 8, 8)
    b.output.sum().backward()  # the blend reaches both the RGB and the mask logit
    assert g.grad[:, :3].abs().sum() > 0 and g.grad[:, 3].abs().sum() > 0
    none = blend_output(torch.zeros(1, 3, 8, 8), occ[:1])
    assert none.mask_logit is None and (none.mask == 1).all()


def test_load_generator_from_a_checkpoint_file(tmp_path):
    spec = GeneratorSpec(size=32, ngf=4)
    G = spec.build()
    cfg = {"size": 32, "ngf": 4, "no_render": False, "lr_stage1": 1e-3}
    path = tmp_path / "g.pt"
    save_checkpoint(path, {"config": cfg, "G": G.state_dict(), "step": 3, "epoch": 0, "stage": 1})
    G2, spec2, info = load_generator(path)
    assert spec2 == spec and info["step"] == 3 and info["config"] == cfg and not G2.training
    assert all(torch.equal(v, G2.state_dict()[k]) for k, v in G.state_dict().items())
    save_checkpoint(path, {"config": {**cfg, "ngf": 8}, "G": G.state_dict(), "step": 3,
                           "epoch": 0, "stage": 1})  # fmt: skip
    with pytest.raises(FormatError, match="do not match its config"):
        load_generator(path)
    with pytest.raises(InputError, match="checkpoint not found"):
        load_generator(tmp_path / "run")


def test_blend_is_recorded_and_old_checkpoints_load_as_the_papers_G(tmp_path):
    cfg = {"size": 32, "ngf": 4, "no_render": False}  # written before the blend option
    G = define_generator(32, ngf=4)
    save_checkpoint(tmp_path / "old.pt", {"config": cfg, "G": G.state_dict(), "step": 1,
                                          "epoch": 0, "stage": 1})  # fmt: skip
    assert load_generator(tmp_path / "old.pt")[1].blend == "none"
    Gm = define_generator(32, ngf=4, blend="mask")
    save_checkpoint(tmp_path / "new.pt", {"config": {**cfg, "blend": "mask"},
                    "G": Gm.state_dict(), "step": 1, "epoch": 0, "stage": 1})  # fmt: skip
    G2, spec, _ = load_generator(tmp_path / "new.pt")
    assert spec.blend == "mask" and G2(torch.zeros(1, 6, 32, 32)).shape == (1, 4, 32, 32)
    with pytest.raises(FormatError, match="do not match"):  # a mask G saved as the paper's
        save_checkpoint(tmp_path / "bad.pt", {"config": cfg, "G": Gm.state_dict(), "step": 1,
                                              "epoch": 0, "stage": 1})  # fmt: skip
        load_generator(tmp_path / "bad.pt")
