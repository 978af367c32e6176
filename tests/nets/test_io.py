"""Generator I/O: the uint8 <-> [-1, 1] conversion round-trips every value; run_generator is
G applied to that conversion; a saved generator loads back with its spec."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deocc_core.errors import FormatError, InputError
from deocc_core.nets.checkpoint import save_checkpoint
from deocc_core.nets.io import (
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
    out = run_generator(G, occ, ren, no_render)
    x = images_to_tensor(occ)
    if not no_render:
        x = torch.cat([x, images_to_tensor(ren)], 1)
    with torch.no_grad():
        want = ((G(x).clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1)
    assert out.shape == (2, 32, 32, 3) and np.array_equal(out, want.numpy())
    assert np.array_equal(run_generator(G, occ[1], ren[1], no_render), out[1])


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
