"""Train the occlusion segmenter on real face crops with synthetic occlusions (resumable).

Each step's batch is drawn from ``np.random.default_rng([seed, step])``, so a run resumed
from a checkpoint draws exactly the batches it would have drawn straight through. Loss:
BCE + soft Dice on the object mask. Checkpoints: ``<out>/latest.pt`` (net, optimizer,
step, config), written atomically every ``save_every`` steps and at the end.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from deocc_core.errors import InputError
from deocc_core.nets.checkpoint import save_checkpoint
from deocc_core.nets.segmenter import Segmenter, SegmenterSpec
from deocc_core.options import option
from deocc_core.segment.faces import FaceCrops, load_face_crops
from deocc_core.segment.occlude import OcclusionConfig, occlude_crop

__all__ = ["SegTrainConfig", "SegTrainResult", "make_batch", "seg_loss", "train_segmenter"]

log = logging.getLogger(__name__)
LATEST = "latest.pt"
MAX_PADDED = 0.6  # crops padded more than this (tight RMFD photos) are left out


@dataclass(frozen=True)
class SegTrainConfig:
    """Options of ``tools/train_segmenter.py``."""

    faces: Path = option(
        Path("faces128.npz"), "face crop file (tools/train_segmenter.py --faces-bulk)", path=True
    )
    out: Path = option(Path("segmenter_run"), "run folder (resumes from its latest.pt)", path=True)
    steps: int = option(3000, "optimizer steps in all", min=1)
    batch: int = option(16, "crops per step", min=1)
    lr: float = option(2e-3, "peak Adam learning rate (cosine decay to 5 %)", min=0.0)
    seed: int = option(0, "seed of the batch draws and the initial weights")
    save_every: int = option(100, "steps between checkpoints", min=1)
    threads: int = option(1, "torch CPU threads (the machine is shared)", min=1)
    frames: float = option(
        0.0,
        "draw weight of our own eyeglass frames (the other occluders' weights sum to 1)",
        min=0.0,
    )
    init: str = option(
        "", "start from these weights (a run's latest.pt; weights only, a new optimizer)"
    )
    widths: tuple[int, ...] = field(default=SegmenterSpec().widths)


@dataclass(frozen=True)
class SegTrainResult:
    """What a run did: ``step`` reached, last ``loss``, ``seconds`` of this call, checkpoint."""

    step: int
    loss: float
    seconds: float
    checkpoint: Path


def make_batch(
    crops: FaceCrops,
    rng: np.random.Generator,
    n: int,
    config: OcclusionConfig | None = None,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """``n`` occluded training crops: ``([n, S, S, 3] uint8, [n, S, S] float32 0/1 targets)``.

    Each crop is occluded (:func:`occlude_crop`), mirrored half the time and jittered by a
    small similarity (landmarks are never exact at test time).
    """
    s = crops.images.shape[1]
    xs, ys = [], []
    for i in rng.integers(len(crops.images), size=n):
        img, lm = crops.images[i], crops.landmarks[i]
        donors = crops.images[rng.integers(len(crops.images), size=4)]
        occ, t = occlude_crop(img, lm, rng, donors, config)
        m = cv2.getRotationMatrix2D(
            (s / 2 + rng.normal(0, 2), s / 2 + rng.normal(0, 2)),
            float(rng.normal(0, 6)),
            float(rng.uniform(0.9, 1.1)),
        )
        occ = cv2.warpAffine(occ, m, (s, s), borderMode=cv2.BORDER_REPLICATE)
        t = cv2.warpAffine(t, m, (s, s), borderMode=cv2.BORDER_REPLICATE)
        if rng.random() < 0.5:
            occ, t = occ[:, ::-1], t[:, ::-1]
        xs.append(occ)
        ys.append((t > 0.5).astype(np.float32))
    return np.stack(xs), np.stack(ys)


def seg_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + soft Dice (Dice over the batch, so empty targets do not divide by zero).

    Args:
        logits: ``[B, 1, S, S]``.
        target: ``[B, S, S]`` in {0, 1}.
    """
    logits = logits[:, 0]
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return bce + dice


def _lr(config: SegTrainConfig, step: int) -> float:
    warm = min(1.0, (step + 1) / 100)
    return config.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / config.steps)))


def train_segmenter(
    config: SegTrainConfig, progress: Callable[[int, float], None] | None = None
) -> SegTrainResult:
    """Train (or resume) a segmenter run; see the module docstring.

    Args:
        config: the run's options.
        progress: called after each step with ``(step, loss)``.

    Raises:
        InputError: the face crop file is missing or has no training crops.
    """
    torch.set_num_threads(config.threads)
    crops = load_face_crops(Path(config.faces))
    crops = crops.select((crops.split == "train") & (crops.padded <= MAX_PADDED))
    if not len(crops.images):
        raise InputError(f"{config.faces}: no training crops")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / LATEST
    torch.manual_seed(config.seed)
    net = Segmenter(SegmenterSpec(int(crops.images.shape[1]), tuple(config.widths)))
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=1e-4)
    step = 0
    if config.init and not ckpt.is_file():
        from deocc_core.nets.checkpoint import load_checkpoint

        net.load_state_dict(load_checkpoint(Path(config.init))["G"])
        log.info("weights from %s", config.init)
    if ckpt.is_file():
        from deocc_core.nets.checkpoint import load_checkpoint

        state = load_checkpoint(ckpt)
        net.load_state_dict(state["G"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        log.info("resumed %s at step %d", ckpt, step)
    net.train()
    t0, loss_v = time.perf_counter(), float("nan")

    def save() -> None:
        save_checkpoint(
            ckpt,
            {
                "G": net.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "epoch": 0,
                "stage": "segmenter",
                "config": {k: str(v) for k, v in asdict(config).items()},
            },
        )

    while step < config.steps:
        rng = np.random.default_rng([config.seed, step])
        x, y = make_batch(crops, rng, config.batch, OcclusionConfig(frames=config.frames))
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        for g in opt.param_groups:
            g["lr"] = _lr(config, step)
        loss = seg_loss(net(xt), torch.from_numpy(y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        loss_v = float(loss.detach())
        if progress is not None:
            progress(step, loss_v)
        if step % config.save_every == 0 or step == config.steps:
            save()
    if not ckpt.is_file():
        save()
    return SegTrainResult(step, loss_v, time.perf_counter() - t0, ckpt)
