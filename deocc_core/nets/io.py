"""Generator I/O: load G from a checkpoint, build its input, run it on uint8 images.

The one conversion between images and G's tensors lives here: uint8 ``[0, 255]`` ↔ float
``[-1, 1]`` (:func:`images_to_tensor`, :func:`tensor_to_images`). Training (through the
shard dataset), inference and evaluation all use it, and none of them needs the trainer
to run a generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from deocc_core.errors import FormatError, ShapeError
from deocc_core.nets.checkpoint import find_checkpoint, load_checkpoint
from deocc_core.nets.networks import BLENDS, blend_output, define_generator, refine_output

__all__ = [
    "GeneratorSpec",
    "GeneratorResult",
    "images_to_tensor",
    "tensor_to_images",
    "generator_input",
    "run_generator",
    "prepare_generator",
    "load_generator",
]


@dataclass(frozen=True)
class GeneratorSpec:
    """What running a trained generator needs to know about it (read from its checkpoint).

    Attributes:
        size: crop side, pixels (a power of two).
        ngf: generator base width.
        no_render: the ablation without the 3DMM render channel (3-channel input).
        blend: ``"mask"``: G also predicts the occlusion mask m̂ and its output is blended into
            the input (m̂·G + (1 − m̂)·I); ``"none"``: the paper's G, which redraws every pixel
            (checkpoints older than the option are ``"none"``).
    """

    size: int
    ngf: int = 64
    no_render: bool = False
    blend: str = "none"

    def __post_init__(self) -> None:
        if self.blend not in BLENDS:
            raise FormatError(
                f"generator blend must be one of {', '.join(BLENDS)}, got {self.blend!r}"
            )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GeneratorSpec:
        """The spec of a training config dict (the ``config`` of a checkpoint).

        Example:
            >>> GeneratorSpec.from_config({"size": 64, "ngf": 8, "no_render": False, "lr": 1})
            GeneratorSpec(size=64, ngf=8, no_render=False, blend='none')
        """
        return cls(
            int(config["size"]),
            int(config["ngf"]),
            bool(config["no_render"]),
            str(config.get("blend", "none")),
        )

    def build(self) -> nn.Module:
        """A freshly initialised generator of this shape (see ``define_generator``)."""
        return define_generator(self.size, no_render=self.no_render, ngf=self.ngf, blend=self.blend)


@dataclass(frozen=True)
class GeneratorResult:
    """What :func:`run_generator` returns for ``[..., S, S, 3]`` crops.

    Attributes:
        output: uint8 ``[..., S, S, 3]``: the blended result m̂·G + (1 − m̂)·occluded (what a
            user gets; G's own output for blend ``"none"``).
        raw: uint8 ``[..., S, S, 3]``: G's RGB, every pixel redrawn.
        mask: float32 ``[..., S, S]`` in [0, 1]: m̂, where G thinks the face is occluded
            (all ones for blend ``"none"``).
    """

    output: npt.NDArray[np.uint8]
    raw: npt.NDArray[np.uint8]
    mask: npt.NDArray[np.float32]


def images_to_tensor(
    images: npt.NDArray[np.uint8], device: torch.device | str | None = None
) -> torch.Tensor:
    """uint8 images to float32 tensors in [-1, 1], channels first.

    Args:
        images: ``[..., H, W, C]`` uint8 (one image or a batch), or one ``[H, W]`` plane.
        device: where the tensor goes (converted there); None keeps it on the CPU.

    Returns:
        ``[..., C, H, W]`` float32 in [-1, 1] (``[1, H, W]`` for a plane): a channels-first
        view of the NHWC data (channels-last memory for a 4-D batch).

    Example:
        >>> images_to_tensor(np.full((2, 2, 3), 255, np.uint8)).shape
        torch.Size([3, 2, 2])
        >>> float(images_to_tensor(np.zeros((2, 2), np.uint8)).min())
        -1.0
    """
    t = torch.from_numpy(np.ascontiguousarray(images))
    if device is not None:
        t = t.to(device)
    t = t.float().div_(127.5).sub_(1.0)
    return t[None] if t.ndim == 2 else t.movedim(-1, -3)


def tensor_to_images(x: torch.Tensor) -> npt.NDArray[np.uint8]:
    """G's ``[B, C, H, W]`` output in [-1, 1] (clamped) to uint8 ``[B, H, W, C]`` (rounded).

    Example:
        >>> tensor_to_images(torch.tensor([-1.0, 0.0, 1.0]).reshape(1, 3, 1, 1)).ravel().tolist()
        [0, 128, 255]
    """
    y = ((x.float().clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8)
    return y.permute(0, 2, 3, 1).cpu().numpy()


def generator_input(
    batch: dict[str, torch.Tensor], no_render: bool, blend: str = "mask"
) -> torch.Tensor:
    """Occluded ⊕ render ``[B, 6, S, S]`` (or occluded alone, ``[B, 3, S, S]``).

    A given-mask G (``blend="given"``) reads ``prefill`` ⊕ ``render`` ⊕ ``given_mask``
    (``[B, 7, S, S]``; ``[B, 4, S, S]`` without the render), ``given_mask`` ``[B, 1, S, S]``
    in [0, 1] (see :func:`deocc_core.infer.fill.prefill`).

    Example:
        >>> b = {"occluded": torch.zeros(2, 3, 8, 8), "render": torch.ones(2, 3, 8, 8)}
        >>> generator_input(b, False).shape, generator_input(b, True).shape
        (torch.Size([2, 6, 8, 8]), torch.Size([2, 3, 8, 8]))
        >>> b.update(prefill=torch.zeros(2, 3, 8, 8), given_mask=torch.zeros(2, 1, 8, 8))
        >>> generator_input(b, False, "given").shape, generator_input(b, True, "given").shape
        (torch.Size([2, 7, 8, 8]), torch.Size([2, 4, 8, 8]))
    """
    if blend == "given":
        parts = [batch["prefill"], *([] if no_render else [batch["render"]]), batch["given_mask"]]
        return torch.cat(parts, 1)
    return batch["occluded"] if no_render else torch.cat([batch["occluded"], batch["render"]], 1)


def run_generator(
    G: nn.Module,
    occluded: npt.NDArray[np.uint8],
    render: npt.NDArray[np.uint8],
    spec: GeneratorSpec | bool,
    device: torch.device | str = "cpu",
    *,
    prefill: npt.NDArray[np.uint8] | None = None,
    given_mask: npt.NDArray[np.floating] | None = None,
) -> GeneratorResult:
    """Run G on uint8 RGB crops (no gradients).

    Args:
        G: generator in eval mode (channels-last weights run fastest on CPU:
            :func:`prepare_generator`).
        occluded: uint8 ``[B, S, S, 3]``, or one crop ``[S, S, 3]``.
        render: the 3DMM renders, same shape (ignored when ``no_render``).
        spec: G's :class:`GeneratorSpec`; a bool is read as the old ``no_render`` flag (the
            blend then follows G's output: 4 channels = ``"mask"``).
        device: where G runs.
        prefill: for a given-mask G (blend ``"given"``, required there): the crops with the
            mask filled (:func:`deocc_core.infer.fill.prefill`), shaped like ``occluded``.
        given_mask: for a given-mask G: ``[B, S, S]`` (or ``[S, S]``) float in [0, 1].

    Returns:
        :class:`GeneratorResult`, arrays shaped like the input (one crop: no batch axis).

    Raises:
        ShapeError: G's output does not match ``spec.blend``.

    Example:
        >>> G = define_generator(32, ngf=4, blend="mask").eval()
        >>> crop = np.zeros((32, 32, 3), np.uint8)
        >>> r = run_generator(G, crop, crop, GeneratorSpec(32, ngf=4, blend="mask"))
        >>> r.output.shape, r.raw.shape, r.mask.shape, r.mask.dtype
        ((32, 32, 3), (32, 32, 3), (32, 32), dtype('float32'))
    """
    no_render = spec if isinstance(spec, bool) else spec.no_render
    blend = "mask" if isinstance(spec, bool) else spec.blend
    if blend == "given" and (prefill is None or given_mask is None):
        raise ShapeError("a given-mask generator needs prefill and given_mask")
    single = occluded.ndim == 3
    if single:
        occluded, render = occluded[None], render[None]
    with torch.no_grad():
        batch = {
            "occluded": images_to_tensor(occluded, device),
            "render": images_to_tensor(render, device),
        }
        if blend == "given":
            m = np.asarray(given_mask, np.float32).reshape(occluded.shape[:3])
            batch["prefill"] = images_to_tensor(prefill.reshape(occluded.shape), device)
            batch["given_mask"] = torch.from_numpy(m).to(device)[:, None]
        x = generator_input(batch, no_render, blend)
        g_out = G(x.contiguous(memory_format=torch.channels_last))
        if not isinstance(spec, bool) and g_out.shape[1] != (4 if spec.blend == "mask" else 3):
            raise ShapeError(
                f"generator returns {g_out.shape[1]} channels, its spec says blend={spec.blend!r}"
            )
        if blend == "given":
            b = refine_output(g_out, batch["prefill"], batch["occluded"], batch["given_mask"])
        else:
            b = blend_output(g_out, batch["occluded"])
        raw = tensor_to_images(b.raw)
        out = raw if b.mask_logit is None and blend != "given" else tensor_to_images(b.output)
        mask = b.mask[:, 0].float().cpu().numpy()
    if single:
        return GeneratorResult(out[0], raw[0], mask[0])
    return GeneratorResult(out, raw, mask)


def prepare_generator(G: nn.Module) -> nn.Module:
    """Put G in eval mode with channels-last weights (in place; returns G).

    oneDNN convolutions run faster on CPU with NHWC tensors (256 px, ngf 64 U-Net, 2 loaded
    cores, interleaved A/B: median 991 → 680 ms); outputs equal to ~6e-8.
    :func:`run_generator` feeds it channels-last inputs to match.

    Example:
        >>> G = prepare_generator(define_generator(64, ngf=8))
        >>> G.training
        False
    """
    return G.eval().to(memory_format=torch.channels_last)


def load_generator(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, GeneratorSpec, dict[str, Any]]:
    """Generator in eval mode from a checkpoint file or a run folder (best.pt, else latest.pt).

    Returns:
        ``(G, spec, info)`` with ``info`` = ``step``, ``stage``, ``data_model`` (the shards'
        model name and sha256), ``data_config`` (the shards' build ``config`` and
        ``config_hash``; empty for older checkpoints), ``path`` (the file read) and
        ``config`` (the training config as saved).

    Raises:
        InputError: no checkpoint there. FormatError: unreadable checkpoint, or weights that do
            not match its config.
    """
    p = find_checkpoint(path)
    state = load_checkpoint(p, "cpu")
    spec = GeneratorSpec.from_config(state["config"])
    G = spec.build()
    try:
        G.load_state_dict(state["G"])
    except RuntimeError as e:
        raise FormatError(
            f"{p}: generator weights do not match its config ({str(e)[:100]})"
        ) from None
    G.to(device).eval()
    info = {
        "step": state["step"],
        "stage": state["stage"],
        "data_model": state.get("data_model", {}),
        "data_config": state.get("data_config", {}),
        "path": str(p),
        "config": state["config"],
    }
    return G, spec, info
