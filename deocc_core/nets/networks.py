"""Generator and discriminators of the paper.

- :class:`UnetGenerator`: pix2pix's U-Net (built recursively from the innermost block;
  Conv-BN-LeakyReLU down, ReLU-ConvT-BN up, dropout in the inner decoder blocks, skip
  connections, tanh output). Input: occluded ⊕ 3DMM render (6 channels) or 3 with
  ``--no-render``.
- :class:`Discriminator`: strided convolutions down to a single logit (7 at 256 px);
  the same network serves as D_g (whole image) and D_l (face region M ⊙ image).
- Mask-aware G (``blend="mask"``): one more output channel, the logit of the occlusion
  mask m̂; :func:`blend_output` turns G's output into m̂·G_rgb + (1 − m̂)·I_occluded, so
  pixels G thinks are not occluded come back as they were. ``blend="none"`` is the paper's
  G, which redraws every pixel.
- Given-mask G (``blend="given"``): the mask comes from outside (the occlusion segmenter's
  m̂, or the user's). G sees the prefill P (the crop with the mask filled by the completed
  3DMM render, :func:`deocc_core.infer.fill.prefill`) ⊕ the render ⊕ the mask and adds a
  residual to P (:func:`refine_output`); its last layer starts at zero, so an untrained G
  returns the prefill. Upsampling is nearest + 3×3 convolution (no transposed-convolution
  checkerboard).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

__all__ = [
    "BLENDS",
    "GeneratorOutput",
    "blend_output",
    "refine_output",
    "generator_in_channels",
    "UnetGenerator",
    "Discriminator",
    "define_generator",
    "define_discriminator",
    "init_weights",
]


# mask-aware G (extra mask channel, blended output); the paper's G; G fills a given mask
BLENDS = ("mask", "none", "given")


class _RgbAndLogit(nn.Module):
    """Outermost activation of a mask-aware G: tanh on the RGB channels, the mask logit raw."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.tanh(x[:, :3]), x[:, 3:]], 1)


def _upsample(in_ch: int, out_ch: int, resize: bool, bias: bool) -> list[nn.Module]:
    """×2 upsampling: a 4×4 transposed convolution, or nearest resize + 3×3 convolution.

    The resize path gives every output pixel the same number of taps: no checkerboard.
    """
    if resize:
        return [
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=bias),
        ]
    return [nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=bias)]


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
        head: nn.Module | None = None,
        resize: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        in_ch = outer if in_ch is None else in_ch
        down = [nn.Conv2d(in_ch, inner, 4, 2, 1, bias=False)]
        if outermost:
            head = nn.Tanh() if head is None else head
            up = [nn.ReLU(True), *_upsample(inner * 2, outer, resize, bias=True), head]
            layers = down + [sub] + up
        elif innermost:
            up = [
                nn.ReLU(True),
                *_upsample(inner, outer, resize, bias=False),
                nn.BatchNorm2d(outer),
            ]
            layers = [nn.LeakyReLU(0.2, True)] + down + up
        else:
            up = [
                nn.ReLU(True),
                *_upsample(inner * 2, outer, resize, bias=False),
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
        mask_logit: one more output channel, the occlusion-mask logit (not squashed).
        residual: a residual head (no tanh; the last layer starts at zero) with nearest +
            3×3-conv upsampling, for a given-mask G (:func:`refine_output`).

    Shapes:
        ``[B, in_channels, S, S]`` → ``[B, out_channels, S, S]`` in [-1, 1], S = 2**num_downs·k;
        with ``mask_logit`` ``[B, out_channels + 1, S, S]``, the last channel a real logit.

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
        mask_logit: bool = False,
        residual: bool = False,
    ) -> None:
        super().__init__()
        r = residual
        block = _UnetBlock(ngf * 8, ngf * 8, innermost=True, resize=r)
        for _ in range(num_downs - 5):
            block = _UnetBlock(ngf * 8, ngf * 8, sub=block, dropout=dropout, resize=r)
        block = _UnetBlock(ngf * 4, ngf * 8, sub=block, resize=r)
        block = _UnetBlock(ngf * 2, ngf * 4, sub=block, resize=r)
        block = _UnetBlock(ngf, ngf * 2, sub=block, resize=r)
        out, head = (out_channels + 1, _RgbAndLogit()) if mask_logit else (out_channels, None)
        if residual:
            head = nn.Identity()
        self.model = _UnetBlock(
            out, ngf, in_ch=in_channels, sub=block, outermost=True, head=head, resize=r
        )
        self.residual = residual

    def zero_last_layer(self) -> None:
        """Zero the output convolution: a residual G then returns its prefill unchanged."""
        last = [m for m in self.model.model if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))][-1]
        nn.init.zeros_(last.weight)
        if last.bias is not None:
            nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, S, S]`` → ``[B, out_channels (+ 1), S, S]``."""
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
        """``[B, C, S, S]`` → ``[B, 1]`` logits."""
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


def generator_in_channels(no_render: bool, blend: str) -> int:
    """G's input channels: occluded (3) ⊕ render (3); a given-mask G: prefill ⊕ render ⊕ mask.

    Example:
        >>> generator_in_channels(False, "mask"), generator_in_channels(False, "given")
        (6, 7)
        >>> generator_in_channels(True, "none"), generator_in_channels(True, "given")
        (3, 4)
    """
    return (3 if no_render else 6) + (blend == "given")


def define_generator(
    size: int, *, no_render: bool = False, ngf: int = 64, blend: str = "none"
) -> UnetGenerator:
    """The paper's generator for ``size`` px crops (bottleneck 1×1).

    Args:
        size: crop side (a power of two).
        no_render: 3-channel input (occluded only) instead of occluded ⊕ render.
        ngf: base width.
        blend: ``"none"``: the paper's G, ``[B, 3, S, S]`` tanh output that redraws every
            pixel; ``"mask"``: ``[B, 4, S, S]``, RGB in [-1, 1] plus the occlusion-mask
            logit, read with :func:`blend_output`; ``"given"``: input prefill ⊕ render ⊕
            mask (``[B, 7, S, S]``, 4 with ``no_render``), output a ``[B, 3, S, S]`` residual
            that starts at zero, read with :func:`refine_output`.

    Example:
        >>> define_generator(32, ngf=4)(torch.zeros(1, 6, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
        >>> define_generator(32, ngf=4, blend="mask")(torch.zeros(1, 6, 32, 32)).shape
        torch.Size([1, 4, 32, 32])
        >>> g = define_generator(32, ngf=4, blend="given")
        >>> float(g(torch.randn(1, 7, 32, 32)).abs().max())
        0.0
    """
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {', '.join(BLENDS)}, got {blend!r}")
    g = init_weights(
        UnetGenerator(
            generator_in_channels(no_render, blend),
            3,
            num_downs=int(math.log2(size)),
            ngf=ngf,
            mask_logit=blend == "mask",
            residual=blend == "given",
        )
    )
    if blend == "given":
        g.zero_last_layer()
    return g


class GeneratorOutput(NamedTuple):
    """G's output read as images (tensors in G's domain).

    Attributes:
        output: ``[B, 3, S, S]`` in [-1, 1]: m̂·raw + (1 − m̂)·occluded (``raw`` for blend
            ``"none"``): what the losses, the discriminators and users see.
        raw: ``[B, 3, S, S]`` in [-1, 1]: G's own RGB, every pixel redrawn.
        mask: ``[B, 1, S, S]`` float32 m̂ in [0, 1] (ones for blend ``"none"``).
        mask_logit: ``[B, 1, S, S]`` the logit of m̂ (for BCE with logits), None for ``"none"``.
    """

    output: torch.Tensor
    raw: torch.Tensor
    mask: torch.Tensor
    mask_logit: torch.Tensor | None


def blend_output(g_out: torch.Tensor, occluded: torch.Tensor) -> GeneratorOutput:
    """Blend a mask-aware G's prediction into the occluded input: m̂·G_rgb + (1 − m̂)·I.

    Args:
        g_out: G's output, ``[B, 4, S, S]`` (RGB in [-1, 1] + mask logit) from a
            ``blend="mask"`` G, or ``[B, 3, S, S]`` from the paper's G (returned as is).
        occluded: the occluded input I, ``[B, 3, S, S]`` in [-1, 1].

    Returns:
        :class:`GeneratorOutput`; the blend is computed in float32 (m̂ = sigmoid(logit)), so
        a pixel with m̂ = 0 is I exactly.

    Example:
        >>> occ = torch.full((1, 3, 2, 2), -1.0)
        >>> logit = torch.tensor([[[[-50.0, 50.0], [0.0, 0.0]]]])
        >>> g = torch.cat([torch.ones(1, 3, 2, 2), logit], 1)
        >>> blend_output(g, occ).output[0, 0].tolist()
        [[-1.0, 1.0], [0.0, 0.0]]
        >>> blend_output(torch.zeros(1, 3, 2, 2), occ).mask.shape
        torch.Size([1, 1, 2, 2])
    """
    if g_out.shape[1] == 3:
        ones = torch.ones_like(g_out[:, :1], dtype=torch.float32)
        return GeneratorOutput(g_out, g_out, ones, None)
    raw, logit = g_out[:, :3], g_out[:, 3:4]
    m = torch.sigmoid(logit.float())
    out = torch.lerp(occluded.float(), raw.float(), m)
    return GeneratorOutput(out, raw, m, logit)


def refine_output(
    g_out: torch.Tensor, prefill: torch.Tensor, occluded: torch.Tensor, mask: torch.Tensor
) -> GeneratorOutput:
    """A given-mask G's residual applied to the prefill, inside the given mask.

    Args:
        g_out: G's residual ``[B, 3, S, S]``.
        prefill: ``[B, 3, S, S]`` in [-1, 1], the crop with the mask filled by the render.
        occluded: ``[B, 3, S, S]`` in [-1, 1], the occluded crop.
        mask: ``[B, 1, S, S]`` in [0, 1], the given occlusion mask.

    Returns:
        :class:`GeneratorOutput` with ``raw`` = clamp(prefill + residual) and ``output`` =
        mask·raw + (1 − mask)·occluded (float32; a pixel with mask 0 is the input exactly);
        ``mask`` is the given mask, ``mask_logit`` None.

    Example:
        >>> occ, pre = torch.zeros(1, 3, 1, 2), torch.full((1, 3, 1, 2), 0.5)
        >>> m = torch.tensor([[[[0.0, 1.0]]]])
        >>> refine_output(torch.full((1, 3, 1, 2), 0.25), pre, occ, m).output[0, 0].tolist()
        [[0.0, 0.75]]
    """
    raw = (prefill.float() + g_out.float()).clamp(-1, 1)
    m = mask.float()
    return GeneratorOutput(torch.lerp(occluded.float(), raw, m), raw, m, None)


def define_discriminator(size: int, *, ndf: int = 64) -> Discriminator:
    """D_g / D_l for ``size`` px images: ``[B, 3, size, size]`` → ``[B, 1]`` logits.

    Example:
        >>> define_discriminator(32, ndf=4)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 1])
    """
    return init_weights(Discriminator(3, size=size, ndf=ndf))
