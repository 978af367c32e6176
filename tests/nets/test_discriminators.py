"""D_g / D_l and U-Net shapes at the paper's sizes."""

from __future__ import annotations

import torch
from torch import nn

from deocc_core.nets import Discriminator, define_discriminator, define_generator


def test_discriminator_one_logit_at_128_and_256():
    for size in (128, 256):
        d = define_discriminator(size, ndf=4)
        assert d(torch.zeros(2, 3, size, size)).shape == (2, 1)
        strided = [m for m in d.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
        assert (
            len(strided) == int(torch.log2(torch.tensor(size))) - 1
        )  # 7 at 256 px, as in the paper
        assert max(m.out_channels for m in strided) <= 8 * 4  # multiplier capped at 8


def test_generator_input_channels_and_range():
    g = define_generator(128, no_render=True, ngf=4).eval()
    with torch.no_grad():
        y = g(torch.randn(1, 3, 128, 128))
    assert y.shape == (1, 3, 128, 128) and float(y.abs().max()) <= 1.0
    assert not any(
        isinstance(m, nn.Conv2d) and m.bias is not None
        for m in Discriminator(3, 64, 4).modules()
        if isinstance(m, nn.Conv2d) and m.out_channels not in (4, 1)
    )
