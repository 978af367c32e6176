"""The occlusion segmenter: a compact U-Net that says which pixels of a face crop are occluded.

It sees only the aligned face crop (the one G sees) plus two fixed coordinate channels (the
crop is aligned, so where a pixel sits on the face is a strong prior), and gives one logit
per pixel. Its mask m̂ replaces G's own mask channel where it is better: G still fills.

Packaged as safetensors (fp16) with its spec in the metadata; :func:`default_segmenter_path`
is ``assets/segmenter.safetensors``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from deocc_core.check import check_array
from deocc_core.errors import FormatError, InputError

__all__ = [
    "SegmenterSpec",
    "Segmenter",
    "SEGMENTER_FORMAT",
    "SEGMENTER_HELP",
    "default_segmenter_path",
    "load_segmenter",
    "is_shipped_model",
    "resolve_segmenter",
    "run_segmenter",
    "save_segmenter",
]

log = logging.getLogger(__name__)

SEGMENTER_FORMAT = "deocc-segmenter-1"  # the safetensors metadata "format" value
DEFAULT_SEGMENTER = "segmenter.safetensors"
SEGMENTER_HELP = (  # --segmenter of deocc-infer and deocc-eval (resolve_segmenter)
    "Occlusion mask m̂: default (the shipped occlusion segmenter, "
    "assets/segmenter.safetensors), none (G's own mask channel), a segmenter .safetensors "
    "file, or auto (default with the shipped model or a given-mask generator, none with "
    "another --ckpt). G fills either way; a given-mask generator (blend given) has no mask "
    "channel and needs a segmenter (or --mask)."
)


@dataclass(frozen=True)
class SegmenterSpec:
    """What a packaged segmenter was built with.

    Attributes:
        size: crop side in pixels it was trained at (it runs at any multiple of 32).
        widths: channels per U-Net level, finest first; the finest level runs at half the
            crop's resolution (a stride-2 stem) with one conv per block there (CPU cost).
        refine: channels of the full-resolution refinement of the upsampled logit.
    """

    size: int = 128
    widths: tuple[int, ...] = (16, 24, 48, 64, 96)
    refine: int = 8


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]


def _block(cin: int, cout: int, n: int = 2) -> nn.Sequential:
    layers = _conv(cin, cout)
    for _ in range(n - 1):
        layers += _conv(cout, cout)
    return nn.Sequential(*layers)


class Segmenter(nn.Module):
    """A U-Net at half resolution (max-pool down, bilinear up: no checkerboard).

    The half-resolution logit is upsampled (bilinear) and refined by a small residual conv
    on the full-resolution image, which puts the edge on the object's outline.

    Input ``[B, 3, S, S]`` RGB in [-1, 1] (S a multiple of 32) plus two coordinate channels
    made inside; output ``[B, 1, S, S]`` logits (sigmoid = probability of occlusion).
    """

    def __init__(self, spec: SegmenterSpec | None = None) -> None:
        super().__init__()
        spec = spec or SegmenterSpec()
        w = spec.widths
        self.spec = spec
        self.stem = nn.Sequential(
            nn.Conv2d(5, w[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(w[0]),
            nn.ReLU(inplace=True),
        )
        self.down = nn.ModuleList(
            [_block(w[0], w[0], 1)] + [_block(a, b) for a, b in zip(w, w[1:], strict=False)]
        )
        self.up = nn.ModuleList(
            [_block(w[1] + w[0], w[0], 1)]
            + [_block(b + a, a) for a, b in zip(w[1:-1], w[2:], strict=True)]
        )
        self.head = nn.Conv2d(w[0], 1, 1)
        self.refine = nn.Sequential(
            nn.Conv2d(4, spec.refine, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(spec.refine, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S]`` in [-1, 1] → ``[B, 1, S, S]`` logits."""
        b, _, h, w = x.shape
        ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")).expand(b, 2, h, w)
        f, skips = self.stem(torch.cat([x, grid], 1)), []
        for i, blk in enumerate(self.down):
            f = blk(f if i == 0 else F.max_pool2d(f, 2))
            skips.append(f)
        f = skips.pop()
        for blk in reversed(self.up):
            s = skips.pop()
            f = F.interpolate(f, size=s.shape[-2:], mode="bilinear", align_corners=False)
            f = blk(torch.cat([s, f], 1))
        logit = F.interpolate(self.head(f), size=(h, w), mode="bilinear", align_corners=False)
        return logit + self.refine(torch.cat([x, logit], 1))


def run_segmenter(
    net: Segmenter, crops: npt.NDArray[np.uint8], device: torch.device | None = None
) -> npt.NDArray[np.float32]:
    """Occlusion probability of aligned face crops.

    Args:
        net: a segmenter in eval mode.
        crops: ``[S, S, 3]`` or ``[B, S, S, 3]`` uint8 RGB aligned crops (S a multiple of 32).
        device: where to run (default: the net's).

    Returns:
        ``[S, S]`` or ``[B, S, S]`` float32 in [0, 1].

    Example:
        >>> net = Segmenter().eval()
        >>> run_segmenter(net, np.zeros((2, 64, 64, 3), np.uint8)).shape
        (2, 64, 64)
    """
    single = np.asarray(crops).ndim == 3
    x = check_array(np.asarray(crops)[None] if single else crops, "crops", (None, None, None, 3))
    if x.dtype != np.uint8 or x.shape[1] % 32 or x.shape[2] % 32:
        raise ValueError(f"crops: uint8 with sides a multiple of 32, got {x.dtype} {x.shape}")
    device = device or next(net.parameters()).device
    t = torch.from_numpy(np.ascontiguousarray(x)).to(device).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        p = torch.sigmoid(net(t / 127.5 - 1.0)).float()[:, 0].cpu().numpy()
    return p[0] if single else p


def save_segmenter(
    net: Segmenter, path: str | Path, metadata: dict[str, str] | None = None
) -> Path:
    """Write the weights as fp16 safetensors with the spec (and ``metadata``) in the header."""
    from deocc_core.nets.packaged import write_safetensors

    tensors = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    meta = {"format": SEGMENTER_FORMAT, "spec": json.dumps(asdict(net.spec)), **(metadata or {})}
    return write_safetensors(path, tensors, meta)


def load_segmenter(
    path: str | Path, device: torch.device | None = None
) -> tuple[Segmenter, dict[str, str]]:
    """Read a :func:`save_segmenter` file as a float32 net in eval mode.

    The file is verified like a packaged generator (content hash, else its card's sha256,
    else one warning) and must hold finite weights.

    Raises:
        InputError: the file is missing.
        FormatError: not a segmenter file, damaged or altered, a non-finite weight, or
            weights that do not fit its spec.
    """
    from deocc_core.nets.packaged import read_verified

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: segmenter file not found")
    tensors, meta, _ = read_verified(path)
    if meta.get("format") != SEGMENTER_FORMAT:
        raise FormatError(f"{path}: not a segmenter (format {meta.get('format')!r})")
    s = json.loads(meta["spec"])
    net = Segmenter(
        SegmenterSpec(int(s["size"]), tuple(int(w) for w in s["widths"]), int(s["refine"]))
    )
    try:
        net.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
        )
    except RuntimeError as e:
        raise FormatError(
            f"{path}: weights do not fit the spec ({str(e).splitlines()[0]})"
        ) from None
    return net.to(device or torch.device("cpu")).eval(), meta


def default_segmenter_path() -> Path:
    """``assets/segmenter.safetensors`` of the checkout (else of the installed package).

    Raises:
        InputError: it is in neither place.
    """
    here = Path(__file__).resolve().parents[2] / "assets" / DEFAULT_SEGMENTER
    if here.is_file():
        return here
    try:
        p = Path(str(resources.files("deocc_assets") / DEFAULT_SEGMENTER))
        if p.is_file():
            return p
    except ModuleNotFoundError:
        pass
    raise InputError(f"{here}: the default segmenter is missing (put it there)")


def resolve_segmenter(
    choice: str,
    ckpt: str | Path | None,
    device: torch.device | None = None,
    *,
    given: bool = False,
) -> tuple[Segmenter | None, str]:
    """``--segmenter`` for the generator ``ckpt``: the one policy of deocc-infer and deocc-eval.

    ``choice``: "default" (the shipped segmenter), "none" (G's own mask channel), a
    segmenter file, or "auto": "default" with the shipped model (``ckpt`` None or the
    shipped file itself) or a given-mask G (``given``: it has no mask channel), "none" with
    any other checkpoint (a user's G keeps its own m̂; the shipped G's is worse than the
    segmenter's). With "auto", no segmenter shipped and a mask-aware G: "none", said once.

    Returns:
        ``(net or None, the choice made)``: "default", "none" or the file.

    Raises:
        InputError / FormatError: an explicit choice that cannot be loaded.
    """
    if choice == "auto":
        choice = "default" if given or is_shipped_model(ckpt) else "none"
        if choice == "default" and not given:
            try:
                return load_segmenter(default_segmenter_path(), device)[0], choice
            except InputError as e:
                log.warning("%s: using G's own occlusion mask", e)
                return None, "none"
    if choice == "none":
        return None, choice
    path = default_segmenter_path() if choice == "default" else Path(choice)
    return load_segmenter(path, device)[0], choice


def is_shipped_model(ckpt: str | Path | None) -> bool:
    """Whether ``ckpt`` is the shipped default generator (None: it is)."""
    from deocc_core.nets.packaged import default_model_path

    if ckpt is None:
        return True
    try:
        return Path(ckpt).resolve() == default_model_path().resolve()
    except InputError:  # no default model shipped: ckpt cannot be it
        return False
