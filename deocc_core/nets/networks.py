"""Generator and discriminators of the paper.

- :class:`UnetGenerator`: pix2pix's U-Net (built recursively from the innermost block;
  Conv-BN-LeakyReLU down, ReLU-ConvT-BN up, dropout in the inner decoder blocks, skip
  connections, tanh output). Input: occluded ⊕ 3DMM render (6 channels) or 3 with
  ``--no-render``.
- :class:`Discriminator`: strided convolutions down to a single logit (7 at 256 px);
  the same network serves as D_g (whole image) and D_l (face region M ⊙ image).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "UnetGenerator",
    "Discriminator",
    "define_generator",
    "define_discriminator",
    "init_weights",
]


class _UnetBlock(nn.Module):
    def __init__(
        self,
        outer: int,
        inner: int,
        in_ch: int | None = None,
        sub: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        in_ch = outer if in_ch is None else in_ch
        down = [nn.Conv2d(in_ch, inner, 4, 2, 1, bias=False)]
        if outermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
            layers = down + [sub] + up
        elif innermost:
            up = [
                nn.ReLU(True),
                nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False),
                nn.BatchNorm2d(outer),
            ]
            layers = [nn.LeakyReLU(0.2, True)] + down + up
        else:
            up = [
                nn.ReLU(True),
                nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False),
                nn.BatchNorm2d(outer),
            ]
            layers = (
                [nn.LeakyReLU(0.2, True)]
                + down
                + [nn.BatchNorm2d(inner), sub]
                + up
                + ([nn.Dropout(0.5)] if dropout else [])
            )
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net generator.

    Args:
        in_channels: 6 (occluded ⊕ render) or 3. out_channels: 3.
        num_downs: downsamplings (8 for 256 px: the bottleneck is 1×1). ngf: base width.
        dropout: dropout in the three innermost decoder blocks.

    Shapes:
        ``[B, in_channels, S, S]`` → ``[B, out_channels, S, S]`` in [-1, 1], S = 2**num_downs·k.

    Example:
        >>> g = UnetGenerator(6, 3, num_downs=5, ngf=8)
        >>> g(torch.zeros(1, 6, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(
        self,
        in_channels: int = 6,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        dropout: bool = True,
    ) -> None:
        super().__init__()
        block = _UnetBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = _UnetBlock(ngf * 8, ngf * 8, sub=block, dropout=dropout)
        block = _UnetBlock(ngf * 4, ngf * 8, sub=block)
        block = _UnetBlock(ngf * 2, ngf * 4, sub=block)
        block = _UnetBlock(ngf, ngf * 2, sub=block)
        self.model = _UnetBlock(out_channels, ngf, in_ch=in_channels, sub=block, outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, S, S]`` → ``[B, out_channels, S, S]`` in [-1, 1] (tanh)."""
        return self.model(x)


class Discriminator(nn.Module):
    """Strided-conv discriminator: ``[B, C, S, S]`` → ``[B, 1]`` logits.

    ``log2(S) - 1`` stride-2 convolutions (channel multiplier capped at 8) down to 2×2, then
    a 2×2 convolution to one logit (7 strided convs at 256 px, as in the paper).

    Example:
        >>> Discriminator(3, size=64, ndf=8)(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 1])
    """

    def __init__(self, in_channels: int = 3, size: int = 256, ndf: int = 64) -> None:
        super().__init__()
        n = int(math.log2(size)) - 1
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for i in range(1, n):
            nxt = ndf * min(2**i, 8)
            layers += [
                nn.Conv2d(ch, nxt, 4, 2, 1, bias=False),
                nn.BatchNorm2d(nxt),
                nn.LeakyReLU(0.2, True),
            ]
            ch = nxt
        layers += [nn.Conv2d(ch, 1, 2, 1, 0)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, S, S]`` → ``[B, 1]`` logits (sigmoid lives in the loss)."""
        return self.model(x).flatten(1)


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """pix2pix init: N(0, 0.02) convs, N(1, 0.02) BatchNorm weights, zero biases.

    Example:
        >>> float(init_weights(nn.Conv2d(1, 1, 3)).bias.detach().abs().sum())
        0.0
    """

    def fn(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)

    return net.apply(fn)


def define_generator(size: int, *, no_render: bool = False, ngf: int = 64) -> UnetGenerator:
    """The paper's generator for ``size`` px crops (bottleneck 1×1).

    Example:
        >>> define_generator(32, ngf=4)(torch.zeros(1, 6, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
    """
    return init_weights(
        UnetGenerator(3 if no_render else 6, 3, num_downs=int(math.log2(size)), ngf=ngf)
    )


def define_discriminator(size: int, *, ndf: int = 64) -> Discriminator:
    """D_g / D_l for ``size`` px images: ``[B, 3, size, size]`` → ``[B, 1]`` logits.

    Example:
        >>> define_discriminator(32, ndf=4)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 1])
    """
    return init_weights(Discriminator(3, size=size, ndf=ndf))
