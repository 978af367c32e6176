"""Train the occlusion segmenter on real face crops with synthetic occlusions (resumable).

A batch mixes three kinds of crops: train faces occluded on the fly by the procedural
occluders (:mod:`deocc_core.segment.occlude`); optionally deocc's 3D occluders from
``synth-occ`` shards of train photos (:mod:`deocc_core.segment.occ3d`, ``occ_share`` of
the batch); optionally the real eyeglasses of the ``glasses_train`` CelebAMask-HQ faces
with their pixel labels (``glasses_share``); optionally real face masks of real masked photos
with their checked pseudo-labels (:mod:`deocc_core.segment.pseudo`, ``real_share``). Each
step's batch is drawn from ``np.random.default_rng([seed, step])``, so a run resumed from a
checkpoint draws exactly the batches it would have drawn straight through. Loss:
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
from deocc_core.segment.faces import GLASSES_CLASS, GLASSES_TRAIN, FaceCrops, load_face_crops
from deocc_core.segment.occlude import OcclusionConfig, occlude_crop

__all__ = [
    "SegTrainConfig",
    "SegTrainResult",
    "labelled_batch",
    "make_batch",
    "seg_loss",
    "train_segmenter",
]

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
        "",
        "start from these weights (a run's latest.pt or a segmenter .safetensors; weights "
        "only, a new optimizer)",
    )
    occ_shards: str = option(
        "", "synth-occ shard folder: its samples of train photos are mixed in (3D occluders)"
    )
    occ_share: float = option(0.25, "share of each batch from --occ-shards", min=0.0, max=1.0)
    occ_classes: str = option(
        "",
        "comma-separated 3D occluder classes kept from --occ-shards (e.g. hand,cup)",
        default_help="all",
    )
    glasses_share: float = option(
        0.0,
        "share of each batch from the real eyeglasses of the glasses_train faces (pixel labels)",
        min=0.0,
        max=1.0,
    )
    real_masks: str = option(
        "", "pseudo-label file of real face masks (train-segmenter pseudo): its train labels"
    )
    real_share: float = option(0.25, "share of each batch from --real-masks", min=0.0, max=1.0)
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

    Each crop is occluded (:func:`occlude_crop`), then jittered (:func:`_jitter`).
    """
    xs, ys = [], []
    for i in rng.integers(len(crops.images), size=n):
        img, lm = crops.images[i], crops.landmarks[i]
        donors = crops.images[rng.integers(len(crops.images), size=4)]
        occ, t = occlude_crop(img, lm, rng, donors, config)
        occ, t = _jitter(occ, t, rng)
        xs.append(occ)
        ys.append(t)
    return np.stack(xs), np.stack(ys)


def labelled_batch(
    images: npt.NDArray[np.uint8],
    targets: npt.NDArray[np.bool_],
    rng: np.random.Generator,
    n: int,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """``n`` crops drawn from occluded ``images`` ([N, S, S, 3]) and ``targets`` ([N, S, S]).

    Jittered like :func:`make_batch`'s crops; the same return shapes.
    """
    xs, ys = [], []
    for i in rng.integers(len(images), size=n):
        occ, t = _jitter(images[i], targets[i].astype(np.float32), rng)
        xs.append(occ)
        ys.append(t)
    return np.stack(xs), np.stack(ys)


def _jitter(
    img: npt.NDArray[np.uint8], target: npt.NDArray[np.float32], rng: np.random.Generator
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """A small random similarity (landmarks are never exact at test time), mirrored half the time.

    Returns:
        ``([S, S, 3] uint8, [S, S] float32 0/1)``.
    """
    s = img.shape[0]
    m = cv2.getRotationMatrix2D(
        (s / 2 + rng.normal(0, 2), s / 2 + rng.normal(0, 2)),
        float(rng.normal(0, 6)),
        float(rng.uniform(0.9, 1.1)),
    )
    img = cv2.warpAffine(img, m, (s, s), borderMode=cv2.BORDER_REPLICATE)
    target = cv2.warpAffine(target, m, (s, s), borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.5:
        img, target = img[:, ::-1], target[:, ::-1]
    return np.ascontiguousarray(img), (target > 0.5).astype(np.float32)


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


def _extra_sources(
    config: SegTrainConfig, crops: FaceCrops
) -> list[tuple[float, npt.NDArray[np.uint8], npt.NDArray[np.bool_]]]:
    """The labelled crops mixed into each batch: ``(share, images, targets)`` per source."""
    out = []
    if config.occ_shards and config.occ_share > 0:
        from deocc_core.segment.occ3d import load_occ_samples

        occ = load_occ_samples(Path(config.occ_shards), crops, "train")
        if config.occ_classes:
            occ = occ.select(np.isin(occ.classes, config.occ_classes.split(",")))
            if not len(occ.images):
                raise InputError(f"{config.occ_shards}: no sample of {config.occ_classes}")
        log.info("3D occluders: %d train samples", len(occ.images))
        out.append((config.occ_share, occ.images, occ.targets))
    if config.glasses_share > 0:
        g = crops.select(crops.split == GLASSES_TRAIN)
        if not len(g.images):
            raise InputError(f"{config.faces}: no {GLASSES_TRAIN} crops for --glasses-share")
        out.append((config.glasses_share, g.images, g.labels == GLASSES_CLASS))
    if config.real_masks and config.real_share > 0:
        from deocc_core.segment.pseudo import load_real_masks

        real = load_real_masks(Path(config.real_masks)).trainable()
        if not len(real.images):
            raise InputError(f"{config.real_masks}: no train label passed its checks")
        log.info("real face masks: %d pseudo-labelled train crops", len(real.images))
        out.append((config.real_share, real.images, real.targets))
    return out


def _mixed_batch(
    config: SegTrainConfig,
    crops: FaceCrops,
    extra: list[tuple[float, npt.NDArray[np.uint8], npt.NDArray[np.bool_]]],
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """One step's batch: each extra source its share (rounded), the procedural rest."""
    parts = [labelled_batch(im, t, rng, round(config.batch * k)) for k, im, t in extra]
    parts = [p for p in parts if len(p[0])]
    n_proc = config.batch - sum(len(p[0]) for p in parts)
    if n_proc > 0:
        parts.insert(0, make_batch(crops, rng, n_proc, OcclusionConfig(frames=config.frames)))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _init_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of a run's checkpoint or of a packaged segmenter (.safetensors)."""
    if path.suffix == ".safetensors":
        from deocc_core.nets.segmenter import load_segmenter

        return load_segmenter(path)[0].state_dict()
    from deocc_core.nets.checkpoint import load_checkpoint

    return load_checkpoint(path)["G"]


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
    all_crops = load_face_crops(Path(config.faces))
    crops = all_crops.select((all_crops.split == "train") & (all_crops.padded <= MAX_PADDED))
    if not len(crops.images):
        raise InputError(f"{config.faces}: no training crops")
    extra = _extra_sources(config, all_crops)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / LATEST
    torch.manual_seed(config.seed)
    net = Segmenter(SegmenterSpec(int(crops.images.shape[1]), tuple(config.widths)))
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=1e-4)
    step = 0
    if config.init and not ckpt.is_file():
        net.load_state_dict(_init_weights(Path(config.init)))
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
        x, y = _mixed_batch(config, crops, extra, rng)
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
